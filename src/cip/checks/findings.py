"""What a check says: findings tied to a manifest line, and one result per check."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from cip.errors import Diagnostic, Severity
from cip.model.manifest import Position

if TYPE_CHECKING:
    from cip.checks.context import CheckContext

Status = Literal["pass", "fail", "warn", "skipped"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem a check found, where a reviewer can jump to it (file:line of the entry)."""

    check: str
    severity: Severity
    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    image: str | None = None
    digest: str | None = None
    registry: str | None = None

    @classmethod
    def at(
        cls,
        check: str,
        severity: Severity,
        message: str,
        where: Position | None,
        *,
        image: str | None = None,
        digest: str | None = None,
        registry: str | None = None,
        file: str | None = None,
    ) -> Finding:
        return cls(
            check,
            severity,
            message,
            file=where.file if where is not None else file,
            line=where.line if where is not None else None,
            column=where.column if where is not None else None,
            image=image,
            digest=digest,
            registry=registry,
        )

    @classmethod
    def from_diagnostic(cls, check: str, diagnostic: Diagnostic) -> Finding:
        d = diagnostic
        return cls(
            check, d.severity, d.message, d.file, d.line, d.column, d.image, d.digest, d.registry
        )

    def diagnostic(self) -> Diagnostic:
        return Diagnostic(
            self.message,
            self.severity,
            self.file,
            self.line,
            self.column,
            self.image,
            self.digest,
            self.registry,
        )

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.file or "", self.line or 0, self.column or 0, self.check, self.message)


class CheckSkipped(Exception):
    """Raised by a check that cannot judge this change; the note says why (never a pass)."""

    def __init__(self, note: str) -> None:
        super().__init__(note)
        self.note = note


CheckRun = Callable[["CheckContext"], Awaitable[list[Finding]]]


@dataclass(frozen=True, slots=True)
class Check:
    """A check: `run` returns its findings; an error finding fails it, a warning warns."""

    id: str
    description: str
    run: CheckRun


@dataclass(frozen=True, slots=True)
class CheckResult:
    id: str
    description: str
    status: Status
    findings: tuple[Finding, ...] = ()
    note: str | None = None  # why a check was skipped

    @classmethod
    def judged(cls, check: Check, findings: list[Finding]) -> CheckResult:
        ordered = tuple(sorted(findings, key=Finding.sort_key))
        status: Status = "pass"
        if any(f.severity == "error" for f in ordered):
            status = "fail"
        elif ordered:
            status = "warn"
        return cls(check.id, check.description, status, ordered)

    @classmethod
    def skipped(cls, check: Check, note: str) -> CheckResult:
        return cls(check.id, check.description, "skipped", note=note)
