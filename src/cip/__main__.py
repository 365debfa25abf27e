"""`python -m cip`: the same as the `cip` console script."""

from cip.cli.main import main

main()
