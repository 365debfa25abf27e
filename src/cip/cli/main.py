"""The `cip` command group: flags in, a command module called, exit code out.

Flag names follow upstream's `cip`/`kpromo cip` so existing jobs can switch by changing the
binary; called without a command, `cip` runs `cip run`, as `kpromo cip` does. Exit codes: 0 ok
(warnings included), 1 failed edges or checks, 2 bad input or usage, 130/143 interrupted.
"""

from __future__ import annotations

import click

from cip import __version__
from cip.cli.audit import audit_group
from cip.cli.check import check_command
from cip.cli.handling import run_cli
from cip.cli.kpromo import KpromoGroup
from cip.cli.logs import log_level_option
from cip.cli.replicate_signatures import replicate_signatures_command
from cip.cli.run import run_command
from cip.cli.sigcheck import sigcheck_command
from cip.cli.verify import verify_command


@click.group(cls=KpromoGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cip", message="%(prog)s %(version)s")
@log_level_option
def cli() -> None:
    """cip, the Container Image Promoter: copies reviewed images from staging to production
    registries, digest for digest, never moving a tag.

    Without a command, the flags are those of `cip run`, as `kpromo cip` is called:
    `cip --thin-manifest-dir=DIR --confirm` is `cip run --thin-manifest-dir=DIR --confirm`.
    """


cli.add_command(run_command)
cli.add_command(sigcheck_command)
cli.add_command(replicate_signatures_command)
cli.add_command(audit_group)
cli.add_command(check_command)
cli.add_command(verify_command)


def main() -> None:
    run_cli(cli)


if __name__ == "__main__":
    main()
