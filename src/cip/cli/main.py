"""The `cip` command group: flags in, a command module called, exit code out.

Flag names follow upstream's `cip`/`kpromo cip` so existing jobs can switch by changing the
binary. Exit codes: 0 ok (warnings included), 1 failed edges or checks, 2 bad input or usage.
"""

from __future__ import annotations

import sys

import click

from cip import __version__
from cip.cli.run import run_command
from cip.errors import ExitCode


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cip", message="%(prog)s %(version)s")
def cli() -> None:
    """cip, the Container Image Promoter: copies reviewed images from staging to production
    registries, digest for digest, never moving a tag."""


cli.add_command(run_command)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(int(ExitCode.OK))


if __name__ == "__main__":
    main()
