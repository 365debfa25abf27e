"""What the gate reasons about: severities on upstream's scale and one finding type for all
sources."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Severity(IntEnum):
    """Upstream's (Grafeas') scale: `--vuln-severity-threshold` takes these numbers or names."""

    UNSPECIFIED = 0
    MINIMAL = 1
    LOW = 2
    MEDIUM = 3
    HIGH = 4
    CRITICAL = 5

    @property
    def label(self) -> str:
        # A finding at 0 is one its scanner could not rate (Trivy's UNKNOWN).
        return "UNKNOWN" if self is Severity.UNSPECIFIED else self.name

    @classmethod
    def parse(cls, text: str) -> Severity | None:
        """`0`…`5` or a name (any case); None for anything else."""
        value = text.strip()
        if value.isdigit():
            number = int(value)
            return cls(number) if 0 <= number <= 5 else None
        return cls.__members__.get(value.upper())


@dataclass(frozen=True, slots=True)
class Finding:
    """One vulnerability a source reports in one image.

    `digest` is the image manifest the source is about (a platform of an index, or the image
    itself); `fixable` says the source names a fix (a fixed version, or a fix state of fixed),
    which is what upstream's gate counts by default.
    """

    digest: str
    id: str
    package: str
    installed: str | None
    fixed: str | None
    fixable: bool
    severity: Severity
    source: str  # where it came from, as people read it: "trivy report reports/x.json"
    purl: str | None = None

    def describe(self) -> str:
        """`CVE-1 CRITICAL in openssl 3.0.11, fixed in 3.0.13`, for messages."""
        installed = f" {self.installed}" if self.installed else ""
        if self.fixed:
            fix = f"fixed in {self.fixed}"
        else:
            fix = "a fix exists" if self.fixable else "no fix named"
        package = self.package or "a package the report does not name"
        return f"{self.id} {self.severity.label} in {package}{installed}, {fix}"

    def sort_key(self) -> tuple[int, str, str, str]:
        """Worst first, then by id and package, so reports list findings the same way."""
        return (-int(self.severity), self.id, self.package, self.source)
