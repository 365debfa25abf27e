"""The `cip` command group: flags in, a command module called, exit code out.

Flag names follow upstream's `cip`/`kpromo cip` so existing jobs can switch by changing the
binary; called without a command, `cip` runs `cip run`, as `kpromo cip` does. Exit codes: 0 ok
(warnings included), 1 failed edges or checks, 2 bad input or usage, 130/143 interrupted.
"""

from __future__ import annotations

import importlib
from typing import ClassVar

import click

from cip import __version__
from cip.cli.handling import run_cli
from cip.cli.kpromo import KpromoGroup
from cip.cli.logs import log_level_option


class LazyGroup(KpromoGroup):
    """Subcommands imported when named, so `cip --version` pays for click alone at start-up."""

    commands_by_module: ClassVar[dict[str, tuple[str, str]]] = {
        "run": ("cip.cli.run", "run_command"),
        "sigcheck": ("cip.cli.sigcheck", "sigcheck_command"),
        "replicate-signatures": ("cip.cli.replicate_signatures", "replicate_signatures_command"),
        "audit": ("cip.cli.audit", "audit_group"),
        "check": ("cip.cli.check", "check_command"),
        "verify": ("cip.cli.verify", "verify_command"),
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.commands_by_module})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = self.commands_by_module.get(cmd_name)
        if found is None:
            return super().get_command(ctx, cmd_name)
        command: click.Command = getattr(importlib.import_module(found[0]), found[1])
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cip", message="%(prog)s %(version)s")
@log_level_option
def cli() -> None:
    """cip, the Container Image Promoter: copies reviewed images from staging to production
    registries, digest for digest, never moving a tag.

    Without a command, the flags are those of `cip run`, as `kpromo cip` is called:
    `cip --thin-manifest-dir=DIR --confirm` is `cip run --thin-manifest-dir=DIR --confirm`.
    """


def main() -> None:
    run_cli(cli)


if __name__ == "__main__":
    main()
