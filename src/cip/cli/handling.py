"""How every command turns a user's error into a message and an exit code, once."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import click

from cip.errors import CipError, Diagnostic, ExitCode

P = ParamSpec("P")
R = TypeVar("R")


def print_diagnostics(diagnostics: list[Diagnostic] | tuple[Diagnostic, ...]) -> None:
    for diagnostic in diagnostics:
        click.echo(diagnostic.render(), err=True)


def handle_cip_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Print a CipError (or an unusable file) as `path:line:column: message`, no traceback."""

    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except CipError as error:
            click.echo(error.render(), err=True)
            sys.exit(int(error.exit_code))
        except OSError as error:
            # A file or folder named on the command line or in a manifest (an oci: layout, a
            # CA bundle) that cannot be used: the user's to fix, so a message, not a traceback.
            where = f"{error.filename}: " if error.filename else ""
            click.echo(f"{where}error: {error.strerror or error}", err=True)
            sys.exit(int(ExitCode.BAD_INPUT))

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper
