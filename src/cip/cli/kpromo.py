"""kpromo's invocation, so `kpromo cip` jobs switch by changing the binary.

Two things differ from click's defaults:
- `cip --thin-manifest-dir=… --confirm`, with no command, is `cip run` (kpromo's `cip` runs a
  promotion when called without a subcommand);
- booleans take Go's `--flag=value` (`--confirm=true`, `--sign=false`), as pflag parses them
  (false drops the flag, or gives its `--no-` form where it has one).

Every flag of kpromo's `cip` is a flag of `cip run` (tests/unit/test_cli_kpromo.py lists them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from cip.cli.params import parse_go_bool

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_COMMAND = "run"


class KpromoCommand(click.Command):
    """A command whose boolean flags also parse as Go's: `--flag=true|false|1|0|t|f|…`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, go_booleans(self, ctx, args))


def go_booleans(command: click.Command, ctx: click.Context, args: list[str]) -> list[str]:
    """`--flag=value` rewritten to what click parses: `--flag` when true, nothing when false.

    The last occurrence of a flag wins, as in pflag. Values of options that take one are
    skipped, so `--snapshot-tag --confirm=true` keeps its meaning.
    """
    flags: set[str] = set()
    takes_value: set[str] = set()
    negation: dict[str, str] = {}  # `--sign` -> `--no-sign`, for `--sign=false`
    for param in command.get_params(ctx):
        if isinstance(param, click.Option):
            names = [*param.opts, *param.secondary_opts]
            (flags if param.is_flag else takes_value).update(names)
            if param.is_flag and param.secondary_opts:
                negation.update(dict.fromkeys(param.opts, param.secondary_opts[0]))
    last: dict[str, int] = {}
    values: dict[int, bool] = {}
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            break
        name, equals, text = arg.partition("=")
        if name in flags:
            if equals:
                value = parse_go_bool(text)
                if value is None:
                    raise click.BadParameter(
                        f"{text!r} is not a boolean (true, false, 1, 0, t, f)",
                        ctx,
                        param_hint=f"'{name}'",
                    )
                values[index] = value
            else:
                values[index] = True
            last[name] = index
        elif arg in takes_value:
            index += 1  # its value, whatever it looks like
        index += 1
    keep = set(last.values())
    out: list[str] = []
    for position, arg in enumerate(args):
        if position not in values:
            out.append(arg)
        elif position in keep and values[position]:
            out.append(arg.partition("=")[0])
        elif position in keep and arg.partition("=")[0] in negation:
            # False given explicitly to a flag whose default depends on other flags
            # (`--sign` is on with a key): say it with the flag's negative form.
            out.append(negation[arg.partition("=")[0]])
    return out


class KpromoGroup(click.Group):
    """The `cip` group: a first argument that is an option, not a command, means `cip run`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        at = self._first_command_position(ctx, args)
        if at < len(args) and args[at].startswith("-"):
            args = [*args[:at], DEFAULT_COMMAND, *args[at:]]
        return super().parse_args(ctx, args)

    def _first_command_position(self, ctx: click.Context, args: list[str]) -> int:
        """Where the command name stands: after the group's own options and their values."""
        own: dict[str, bool] = {}
        for param in self.get_params(ctx):
            if isinstance(param, click.Option):
                for name in (*param.opts, *param.secondary_opts):
                    own[name] = not param.is_flag
        index = 0
        while index < len(args):
            name, equals, _ = args[index].partition("=")
            if name not in own:
                return index
            index += 2 if own[name] and not equals else 1
        return index
