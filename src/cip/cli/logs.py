"""Operator logs: the `logging` module to stderr, at kpromo's `--log-level` names.

Logs say what cip is doing (phases, the diff base it chose); they never carry the report, which
goes to stdout from `report/`, so `--log-level` changes stderr only and a pipe sees the same
document whatever the level.
"""

from __future__ import annotations

import logging
import sys

import click

TRACE = 5  # below DEBUG: logrus's trace level has no standard-library equivalent

# logrus's level names (kpromo's --log-level) onto the standard library's levels.
LOG_LEVELS: dict[str, int] = {
    "trace": TRACE,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
    "panic": logging.CRITICAL,
}

ROOT_LOGGER = "cip"
_HANDLER_NAME = "cip-stderr"


class _OperatorFormatter(logging.Formatter):
    """`message` for info lines (the usual phase lines read as before), `level: message` else."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        if record.levelno == logging.INFO:
            return message
        return f"{record.levelname.lower()}: {message}"


def configure_logging(level: str) -> None:
    """Send the `cip` loggers to stderr at `level`; repeated calls only change the level."""
    logging.addLevelName(TRACE, "TRACE")
    logger = logging.getLogger(ROOT_LOGGER)
    logger.setLevel(LOG_LEVELS[level])
    logger.propagate = False
    if not any(h.get_name() == _HANDLER_NAME for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.set_name(_HANDLER_NAME)
        handler.setFormatter(_OperatorFormatter("%(message)s"))
        logger.addHandler(handler)


def _on_log_level(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        configure_logging(value)
    return value


def log_level_option(func: click.decorators.FC) -> click.decorators.FC:
    """--log-level, accepted before the command (`cip --log-level=debug run`) and after it.

    No click default: the level is set to info once at start, so a command's own --log-level
    without a value given does not undo the group's.
    """
    return click.option(
        "--log-level",
        type=click.Choice(list(LOG_LEVELS)),
        is_eager=True,
        expose_value=False,
        callback=_on_log_level,
        help="Operator logs on stderr at this level and above; the report is unaffected. "
        "[default: info]",
    )(func)
