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

    def withdraw(self, host: str, method: str, status: int) -> None:
        """Take back one counted attempt that turned out to be no request of the run: the
        HTTPS try that found a host speaking plain HTTP (`scheme.py`). Only the probe knows,
        after the attempt was counted at the bottom of the stack, that its failure was the
        answer it asked for."""
        key = (host, method, status)
        if self.counts[key] > 1:
            self.counts[key] -= 1
        else:
            self.counts.pop(key, None)

    @property
    def total(self) -> int:
        return sum(self.counts.values())
