"""Trivy's JSON report (`trivy image --format json`), schema version 2.

Severity is `Results[].Vulnerabilities[].Severity` (UNKNOWN, LOW, MEDIUM, HIGH, CRITICAL; UNKNOWN
is 0 on upstream's scale); a fix is `FixedVersion` or a `Status` of fixed. The image is
`Metadata.RepoDigests` (scanning an index by digest names the index there and scans one
platform, which `Metadata.ImageConfig` names).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_pascal

from cip.vuln.formats.common import (
    ParsedReport,
    Platform,
    ReportError,
    digests_in,
    unbound,
    validation_problem,
)
from cip.vuln.model import Severity

NAME = "Trivy JSON report"
SEVERITIES = {
    "UNKNOWN": Severity.UNSPECIFIED,
    "LOW": Severity.LOW,
    "MEDIUM": Severity.MEDIUM,
    "HIGH": Severity.HIGH,
    "CRITICAL": Severity.CRITICAL,
}
NOT_AFFECTED = "not_affected"  # Trivy's status for a package the advisory does not apply to


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_pascal, extra="ignore", frozen=True)


class _Identifier(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    purl: str | None = Field(default=None, alias="PURL")


class _Vulnerability(_Model):
    vulnerability_id: str = Field(alias="VulnerabilityID")
    pkg_name: str = ""
    pkg_identifier: _Identifier | None = None
    installed_version: str | None = None
    fixed_version: str | None = None
    status: str | None = None
    severity: str = "UNKNOWN"


class _Result(_Model):
    vulnerabilities: list[_Vulnerability] | None = None


class _ImageConfig(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)  # lower-case: the OCI config's names

    os: str | None = None
    architecture: str | None = None
    variant: str | None = None


class _Metadata(_Model):
    repo_digests: list[str] | None = None
    image_config: _ImageConfig | None = None


class _Version(_Model):
    version: str | None = None


class _Report(_Model):
    schema_version: int
    artifact_name: str | None = None
    metadata: _Metadata | None = None
    results: list[_Result] | None = None
    trivy: _Version | None = None


def looks_like(document: object) -> bool:
    return isinstance(document, dict) and "SchemaVersion" in document and "Results" in document


def parse(document: Any) -> ParsedReport:
    try:
        report = _Report.model_validate(document)
    except ValidationError as error:
        raise validation_problem(NAME, error) from None
    if report.schema_version != 2:
        raise ReportError(f"Trivy JSON schema version {report.schema_version} (2 is read)")
    findings = []
    for result in report.results or []:
        for item in result.vulnerabilities or []:
            if item.status == NOT_AFFECTED:
                continue
            severity = SEVERITIES.get(item.severity.upper())
            if severity is None:
                raise ReportError(
                    f"{item.vulnerability_id} has severity {item.severity!r}, which Trivy "
                    f"does not use ({', '.join(SEVERITIES)})"
                )
            fixed = item.fixed_version or None
            findings.append(
                unbound(
                    item.vulnerability_id,
                    item.pkg_name,
                    item.installed_version,
                    fixed,
                    fixed is not None or item.status == "fixed",
                    severity,
                    item.pkg_identifier.purl if item.pkg_identifier else None,
                )
            )
    metadata = report.metadata or _Metadata()
    config = metadata.image_config
    platform = None
    if config is not None and config.architecture:
        platform = Platform(config.os or None, config.architecture, config.variant or None)
    version = report.trivy.version if report.trivy else None
    return ParsedReport(
        NAME,
        digests_in(metadata.repo_digests or []),
        tuple(findings),
        platform,
        f"trivy {version}" if version else "trivy",
    )
