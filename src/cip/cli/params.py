"""Flag values written the way kpromo's users write them: Go durations and Go booleans.

Operators move jobs from `kpromo cip` (Go, cobra/pflag) to cip by changing the binary, so a
value that kpromo accepts must mean the same here, and one it refuses is refused here too.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import click
import durationpy

# strconv.ParseBool, which pflag uses for every boolean flag: exactly these spellings.
GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})

# time.ParseDuration's units. durationpy also knows d, w, mm and y, which Go refuses; a job
# that works with cip must work with kpromo, so those are refused here as well.
GO_DURATION_UNITS = ("ns", "us", "µs", "μs", "ms", "s", "m", "h")
_UNIT = re.compile(r"[^\d.]+")


def parse_go_bool(text: str) -> bool | None:
    """The value of `--flag=text` as pflag reads it; None when Go would refuse it."""
    if text in GO_TRUE:
        return True
    if text in GO_FALSE:
        return False
    return None


def parse_go_duration(text: str) -> timedelta:
    """A duration in time.ParseDuration's syntax (`90s`, `5m`, `1h30m`, `1.5h`, `300ms`).

    Raises ValueError with a message that names the text and what Go accepts.
    """
    body = text.lstrip("+-")
    for unit in _UNIT.findall(body):
        if unit not in GO_DURATION_UNITS:
            raise ValueError(
                f"{text!r}: unknown unit {unit!r} (Go durations use {', '.join(GO_DURATION_UNITS)}"
                ", e.g. 90s, 5m, 1h30m)"
            )
    if body not in ("0", "") and not _UNIT.search(body):
        raise ValueError(f"{text!r}: missing unit (e.g. {text}s or {text}m)")
    try:
        return durationpy.from_str(text)
    except durationpy.DurationError as exc:
        raise ValueError(f"{text!r} is not a duration (e.g. 90s, 5m, 1h30m)") from exc


# click 8.4 types ParamType by its value, 8.5 by value and input: leave it unparameterised so
# the same code checks under both.
class GoDuration(click.ParamType):  # type: ignore[type-arg, unused-ignore]
    """A click type for every duration flag: Go's syntax in, a `timedelta` out.

    Negative durations are refused unless `allow_negative`: no timeout or backoff is negative.
    """

    name = "duration"

    def __init__(self, *, allow_negative: bool = False) -> None:
        self.allow_negative = allow_negative

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        return "DURATION"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> timedelta:
        if isinstance(value, timedelta):
            return value
        try:
            duration = parse_go_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if duration < timedelta(0) and not self.allow_negative:
            self.fail(f"{value!r}: must not be negative", param, ctx)
        return duration
