"""How every command turns a user's error into a message and an exit code, once.

Messages go to stderr. When the user asked for `--output=json`, stdout also carries the one
JSON document of the run, for every outcome: a pipe into `jq` never sees an empty stdout.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn, ParamSpec, TypeVar

import click

from cip.cli.interrupts import Interrupted
from cip.cli.logs import configure_logging
from cip.errors import CipError, Diagnostic, ExitCode

P = ParamSpec("P")
R = TypeVar("R")

OUTPUT_META = "cip.output"  # ctx.meta key: the --output value, once click has read it


def print_diagnostics(diagnostics: list[Diagnostic] | tuple[Diagnostic, ...]) -> None:
    for diagnostic in diagnostics:
        click.echo(diagnostic.render(), err=True)


def remember_output(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Callback of --output (an eager option): later errors know the output mode."""
    if value is not None:
        ctx.meta[OUTPUT_META] = value
    return value


def requested_output(args: Sequence[str]) -> str | None:
    """The --output value written on a command line click could not parse; the last one wins."""
    found: str | None = None
    for index, arg in enumerate(args):
        if arg == "--":
            break
        if arg.startswith("--output="):
            found = arg.removeprefix("--output=")
        elif arg == "--output" and index + 1 < len(args):
            found = args[index + 1]
    return found


def _wants_json(ctx: click.Context | None, args: Sequence[str] = ()) -> bool:
    if ctx is not None and OUTPUT_META in ctx.meta:
        return bool(ctx.meta[OUTPUT_META] == "json")
    return requested_output(args) == "json"


def _dry_run(ctx: click.Context | None) -> bool | None:
    """Whether the run was a dry run, when click had read --confirm before the error."""
    if ctx is None or "confirm" not in ctx.params:
        return None
    return not ctx.params["confirm"]


def _command(ctx: click.Context | None) -> str:
    """The command whose document an error answers: `run`, `sigcheck`, `audit reconcile`…"""
    if ctx is None:
        return "run"
    return ctx.command_path.partition(" ")[2] or "run"


def fail(
    message: str,
    diagnostics: Sequence[Diagnostic],
    exit_code: int,
    ctx: click.Context | None,
    args: Sequence[str] = (),
) -> NoReturn:
    """Print `message` on stderr; with --output=json, the error document on stdout; exit."""
    click.echo(message, err=True)
    if _wants_json(ctx, args):
        from cip.report.document import error_json  # the renderers load pydantic

        click.echo(
            error_json(
                diagnostics, exit_code=exit_code, dry_run=_dry_run(ctx), command=_command(ctx)
            )
        )
    sys.exit(exit_code)


def stop_interrupted(
    interrupt: Interrupted, ctx: click.Context | None, args: Sequence[str] = ()
) -> NoReturn:
    """One line on stderr, the interrupted document with --output=json, exit 130 or 143."""
    click.echo(interrupt.line(), err=True)
    if _wants_json(ctx, args):
        from cip.report.document import interrupted_json  # the renderers load pydantic

        click.echo(
            interrupted_json(
                interrupt.signal_name,
                unit=interrupt.unit if interrupt.counted else None,
                done=interrupt.done,
                not_started=interrupt.not_started,
                dry_run=_dry_run(ctx),
                command=_command(ctx),
            )
        )
    sys.exit(interrupt.exit_code)


def handle_cip_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Print a CipError (or an unusable file) as `path:line:column: message`, no traceback;
    an interrupt as its one line."""

    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        ctx = click.get_current_context(silent=True)
        try:
            return func(*args, **kwargs)
        except Interrupted as interrupt:
            stop_interrupted(interrupt, ctx)
        except CipError as error:
            fail(
                error.render(),
                error.diagnostics or (Diagnostic(error.message),),
                error.exit_code,
                ctx,
            )
        except OSError as error:
            # A file or folder named on the command line or in a manifest (an oci: layout, a
            # CA bundle) that cannot be used: the user's to fix, so a message, not a traceback.
            where = f"{error.filename}: " if error.filename else ""
            message = f"{error.strerror or error}"
            diagnostic = Diagnostic(message, file=str(error.filename) if error.filename else None)
            fail(f"{where}error: {message}", (diagnostic,), ExitCode.BAD_INPUT, ctx)

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


def _raise_sigterm(signum: int, frame: object) -> None:
    raise Interrupted("SIGTERM")


def run_cli(command: click.Command, args: list[str] | None = None) -> NoReturn:
    """Run the `cip` command: click's usage errors and interrupts get the same treatment as
    cip's own errors (stderr message, JSON document when asked for, documented exit code)."""
    argv = list(sys.argv[1:] if args is None else args)
    configure_logging("info")
    # SIGTERM outside an event loop (while manifests load) stops as Ctrl-C does there, with
    # its own exit code; inside one, `until_signalled` takes over.
    signal.signal(signal.SIGTERM, _raise_sigterm)
    try:
        result = command.main(argv, prog_name="cip", standalone_mode=False)
    except click.UsageError as error:
        error.show()
        ctx = error.ctx
        diagnostic = Diagnostic(error.format_message())
        if _wants_json(ctx, argv):
            from cip.report.document import error_json  # the renderers load pydantic

            click.echo(
                error_json(
                    (diagnostic,),
                    exit_code=error.exit_code,
                    dry_run=_dry_run(ctx),
                    command=_command(ctx),
                )
            )
        sys.exit(error.exit_code)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except Interrupted as interrupt:
        stop_interrupted(interrupt, None, argv)
    except (click.Abort, KeyboardInterrupt):
        # Ctrl-C outside a command's event loop (loading manifests): nothing was started.
        stop_interrupted(Interrupted("SIGINT"), None, argv)
    sys.exit(result if isinstance(result, int) else int(ExitCode.OK))
