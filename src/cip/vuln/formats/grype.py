"""Grype's JSON report (`grype -o json`), as its documentation and golden files show it.

Severity is `matches[].vulnerability.severity` (Negligible, Low, Medium, High, Critical,
Unknown; Negligible is MINIMAL on upstream's scale), a fix is `vulnerability.fix.state` fixed
(with `fix.versions`). The image is `source.target.manifestDigest`: for an index Grype scans one
platform, and that digest is the platform's manifest.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from cip.vuln.formats.common import (
    ParsedReport,
    Platform,
    ReportError,
    digests_in,
    unbound,
    validation_problem,
)
from cip.vuln.model import Severity

NAME = "Grype JSON report"
SEVERITIES = {
    "unknown": Severity.UNSPECIFIED,
    "negligible": Severity.MINIMAL,
    "low": Severity.LOW,
    "medium": Severity.MEDIUM,
    "high": Severity.HIGH,
    "critical": Severity.CRITICAL,
}


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, extra="ignore", frozen=True)


class _Fix(_Model):
    versions: list[str] = []
    state: str = ""


class _Vulnerability(_Model):
    id: str
    severity: str = "Unknown"
    fix: _Fix | None = None


class _Artifact(_Model):
    name: str = ""
    version: str | None = None
    purl: str | None = None


class _Match(_Model):
    vulnerability: _Vulnerability
    artifact: _Artifact


class _Target(_Model):
    manifest_digest: str | None = None
    architecture: str | None = None
    os: str | None = None


class _Source(_Model):
    type: str | None = None
    # A directory or file scan has a plain string here; only images have a digest.
    target: _Target | str | None = None


class _Descriptor(_Model):
    name: str | None = None
    version: str | None = None


class _Report(_Model):
    matches: list[_Match]
    source: _Source | None = None
    descriptor: _Descriptor | None = None


def looks_like(document: object) -> bool:
    return isinstance(document, dict) and "matches" in document and "descriptor" in document


def parse(document: Any) -> ParsedReport:
    try:
        report = _Report.model_validate(document)
    except ValidationError as error:
        raise validation_problem(NAME, error) from None
    findings = []
    for match in report.matches:
        vulnerability = match.vulnerability
        severity = SEVERITIES.get(vulnerability.severity.lower())
        if severity is None:
            raise ReportError(
                f"{vulnerability.id} has severity {vulnerability.severity!r}, which Grype does "
                "not use (Negligible, Low, Medium, High, Critical, Unknown)"
            )
        fix = vulnerability.fix or _Fix()
        fixable = fix.state == "fixed" or bool(fix.versions)
        findings.append(
            unbound(
                vulnerability.id,
                match.artifact.name,
                match.artifact.version,
                ", ".join(fix.versions) or None,
                fixable,
                severity,
                match.artifact.purl or None,
            )
        )
    target = report.source.target if report.source else None
    digests: frozenset[str] = frozenset()
    platform = None
    if isinstance(target, _Target):
        digests = digests_in([target.manifest_digest])
        if target.architecture:
            platform = Platform(target.os or None, target.architecture)
    descriptor = report.descriptor or _Descriptor()
    scanner = " ".join(p for p in (descriptor.name or "grype", descriptor.version) if p)
    return ParsedReport(NAME, digests, tuple(findings), platform, scanner)
