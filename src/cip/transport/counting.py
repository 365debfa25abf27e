"""Counting every request a run makes, by host, method and status.

The count is what `--output=json` reports and what benchmarks compare against a registry's own
access log, so it lives at the bottom of the transport stack where every attempt passes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(slots=True)
class RequestCounter:
    """Requests per (host, method, status); status 0 means no answer (connection failed).

    Counted per attempt, so retries made by the transport layers above show up as such.
    """

    counts: Counter[tuple[str, str, int]] = field(default_factory=Counter)

    def add(self, host: str, method: str, status: int) -> None:
        self.counts[(host, method, status)] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())
