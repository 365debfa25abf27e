"""What every report format parses into, and the small facts shared by the parsers."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from pydantic import ValidationError

from cip.vuln.model import Finding, Severity

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


class ReportError(ValueError):
    """A file that is not a report cip reads, or one whose content breaks its format."""


@dataclass(frozen=True, slots=True)
class Platform:
    """The platform a report says it scanned; fields it does not name are None."""

    os: str | None = None
    architecture: str | None = None
    variant: str | None = None

    def matches(self, descriptor: Mapping[str, object]) -> bool:
        """Whether an index entry's `platform` is this one (fields the report leaves out, or
        the entry leaves out, are not compared)."""
        pairs = (
            (self.os, descriptor.get("os")),
            (self.architecture, descriptor.get("architecture")),
            (self.variant, descriptor.get("variant")),
        )
        return self.architecture is not None and all(
            mine is None or theirs is None or mine == theirs for mine, theirs in pairs
        )

    def describe(self) -> str:
        return "/".join(part for part in (self.os, self.architecture, self.variant) if part)


@dataclass(frozen=True, slots=True)
class ParsedReport:
    """A report's findings (not yet bound to a digest) and what it says it is about.

    `digests` are the image digests its own metadata names (empty when it names none);
    `platform` is set when it says which platform it scanned. Findings carry an empty digest
    and source until `bind` gives them the image's.
    """

    format: str
    digests: frozenset[str]
    findings: tuple[Finding, ...]
    platform: Platform | None = None
    scanner: str | None = None  # "trivy 0.76.0", when the report names its tool

    def bind(self, digest: str, source: str) -> list[Finding]:
        return [replace(f, digest=digest, source=source) for f in self.findings]


def digests_in(values: Iterable[str | None]) -> frozenset[str]:
    """The digests in `repo@sha256:…` references or bare digests."""
    found: set[str] = set()
    for value in values:
        if value:
            found.update(DIGEST.findall(value))
    return frozenset(found)


def validation_problem(format_name: str, error: ValidationError) -> ReportError:
    """The first problem pydantic found, with its place in the document (`Results.0.…`)."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top)"
    more = error.error_count() - 1
    extra = f" (and {more} more)" if more else ""
    return ReportError(f"not a valid {format_name}: {where}: {first['msg']}{extra}")


def unbound(
    id: str,
    package: str,
    installed: str | None,
    fixed: str | None,
    fixable: bool,
    severity: Severity,
    purl: str | None = None,
) -> Finding:
    """A finding as a parser reads it, before `ParsedReport.bind` names its digest and source."""
    return Finding("", id, package, installed, fixed, fixable, severity, "", purl)
