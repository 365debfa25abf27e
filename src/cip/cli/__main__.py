"""`python -m cip.cli`: the same as the `cip` console script."""

from cip.cli.main import main

main()
