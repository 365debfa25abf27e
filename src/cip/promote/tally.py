"""How far a command's work got, in units it names, so an interrupt can say it at any moment.

`cip run` counts edges (`executor.EdgeTally`); the other commands count what they work
through: `cip verify` destination repositories, `cip sigcheck` digests, `cip check` checks,
`cip audit reconcile` registries, `cip replicate-signatures` images. The work updates the
tally as it goes; the CLI reads it when a signal stops the command.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Tally:
    """`done` and `not_started` units; those in flight are in neither. Both None until the
    units are known, which a report says as "counts unknown" rather than zero."""

    unit: str  # plural noun: "repositories", "digests", "checks", "registries"
    verb: str = "done"  # what done means for this unit: "read", "checked", "judged"
    done: int | None = None
    not_started: int | None = None

    def expect(self, units: int) -> None:
        """`units` more are known and not started yet."""
        self.done = self.done or 0
        self.not_started = (self.not_started or 0) + units

    def started(self, units: int = 1) -> None:
        if self.not_started is not None:
            self.not_started -= units

    def finished(self, units: int = 1) -> None:
        if self.done is not None:
            self.done += units
