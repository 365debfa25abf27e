"""Rate and concurrency limits as the flags give them: values, checked once, nothing running.

Kept apart from `ratelimit.py` (which enforces them on the event loop) so the command line can
check `--rate-limit` and `--host-concurrency` before anything network-related is imported.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cip.errors import UsageError


@dataclass(frozen=True, slots=True)
class RateLimitConfig:
    """Fixed caps (requests/second) and concurrency limits; hosts are `host[:port]`."""

    default_rate: float | None = None  # None: adaptive
    host_rates: Mapping[str, float] = field(default_factory=dict)
    concurrency: int | None = None  # in-flight requests per host
    host_concurrency: Mapping[str, int] = field(default_factory=dict)
    decrease: float = 0.5  # a 429 multiplies the rate by this
    recovery: float = 0.1  # each second after a cut adds this fraction of the cut rate
    min_rate: float = 0.5

    @classmethod
    def parse(
        cls, rate_limits: Iterable[str] = (), concurrency: Iterable[str] = (), **kwargs: Any
    ) -> RateLimitConfig:
        """From repeated `--rate-limit=N|HOST=N` and `--host-concurrency=N|HOST=N` values."""
        default_rate, host_rates = _parse_flag("--rate-limit", rate_limits, float)
        default_conc, host_conc = _parse_flag("--host-concurrency", concurrency, int)
        return cls(
            default_rate=default_rate,
            host_rates=host_rates,
            concurrency=default_conc,
            host_concurrency=host_conc,
            **kwargs,
        )

    def rate_for(self, host: str) -> float | None:
        return self.host_rates.get(host, self.default_rate)

    def concurrency_for(self, host: str) -> int | None:
        return self.host_concurrency.get(host, self.concurrency)


_Number = TypeVar("_Number", int, float)


def _parse_flag(
    flag: str, values: Iterable[str], kind: Callable[[str], _Number]
) -> tuple[_Number | None, dict[str, _Number]]:
    default: _Number | None = None
    per_host: dict[str, _Number] = {}
    for raw in values:
        host, sep, number = raw.rpartition("=")
        try:
            value = kind(number.strip())
        except ValueError:
            value = kind("0")
        if not math.isfinite(value) or value <= 0:
            raise UsageError(f"{flag}={raw}: expected a positive number, or HOST=NUMBER")
        if sep and not host.strip():
            raise UsageError(f"{flag}={raw}: the host before '=' is empty")
        if sep:
            per_host[host.strip()] = value
        else:
            default = value
    return default, per_host
