"""Durations as Go writes them (`90s`, `5m`, `1h30m`, `250ms`), which kpromo users type.

Go's `time.ParseDuration` syntax: a sequence of decimal numbers, each with an optional fraction
and a unit (ns, us or µs, ms, s, m, h); a bare `0` needs no unit. Written by hand because no
maintained Python library parses exactly this syntax; ten lines of regular expression do.
"""

from __future__ import annotations

import re

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Seconds in a Go duration; ValueError naming the text when it is not one (or negative)."""
    value = text.strip()
    if value == "0":
        return 0.0
    if value.startswith("-"):
        raise ValueError(f"{text!r} is negative; a duration here must be positive")
    value = value.removeprefix("+")
    total, position = 0.0, 0
    for match in _PART.finditer(value):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if not value or position != len(value):
        raise ValueError(f"{text!r} is not a duration: write it as Go does, e.g. 90s, 5m, 1h30m")
    return total
