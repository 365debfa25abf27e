"""CycloneDX JSON (1.4 and later) with a `vulnerabilities` list: a BOM with its scan results.

Severity is the highest of `vulnerabilities[].ratings[].severity` (critical, high, medium, low,
info, none, unknown; a rating with only a score is banded as SARIF's), one finding per
component in `affects`. A fix is a version in `affects[].versions` with status unaffected, or
the versions of a `recommendation` worded "Upgrade X to version Y" (Trivy, the specification's
example). A VEX analysis that says
the vulnerability does not apply (not_affected, false_positive, resolved) drops it. The image
is `metadata.component`'s `pkg:oci` purl, whose version is the manifest digest.
"""

from __future__ import annotations

import re
from typing import Any

from packageurl import PackageURL
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from cip.vuln.formats.common import (
    ParsedReport,
    Platform,
    ReportError,
    digests_in,
    unbound,
    validation_problem,
)
from cip.vuln.formats.sarif import band
from cip.vuln.model import Severity

NAME = "CycloneDX BOM"
SEVERITIES = {
    "critical": Severity.CRITICAL,
    "high": Severity.HIGH,
    "medium": Severity.MEDIUM,
    "low": Severity.LOW,
    "info": Severity.MINIMAL,
    "none": Severity.UNSPECIFIED,
    "unknown": Severity.UNSPECIFIED,
}
DOES_NOT_APPLY = frozenset({"not_affected", "false_positive", "resolved", "resolved_with_pedigree"})
# "Upgrade X to version Y" (Trivy), "… to version Y, Z or higher." (the specification's example)
_UPGRADE = re.compile(r"^Upgrade \S+ to version (?P<versions>.+?)(?: or higher)?\.?$")
_REPO_DIGEST = "aquasecurity:trivy:RepoDigest"


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, extra="ignore", frozen=True)


class _Property(_Model):
    name: str
    value: str | None = None


class _Component(_Model):
    bom_ref: str | None = Field(default=None, alias="bom-ref")
    name: str = ""
    version: str | None = None
    purl: str | None = None
    properties: list[_Property] | None = None
    components: list[_Component] | None = None


class _Metadata(_Model):
    component: _Component | None = None


class _Rating(_Model):
    severity: str | None = None
    score: float | None = None


class _Version(_Model):
    version: str | None = None
    range: str | None = None
    status: str | None = None


class _Affects(_Model):
    ref: str
    versions: list[_Version] | None = None


class _Analysis(_Model):
    state: str | None = None


class _Vulnerability(_Model):
    id: str
    ratings: list[_Rating] | None = None
    recommendation: str | None = None
    analysis: _Analysis | None = None
    affects: list[_Affects] | None = None


class _Bom(_Model):
    bom_format: str
    spec_version: str
    metadata: _Metadata | None = None
    components: list[_Component] | None = None
    vulnerabilities: list[_Vulnerability] | None = None


def looks_like(document: object) -> bool:
    return isinstance(document, dict) and document.get("bomFormat") == "CycloneDX"


def _purl(text: str | None) -> PackageURL | None:
    if not text:
        return None
    try:
        return PackageURL.from_string(text)
    except ValueError:
        return None


def _severity(vulnerability: _Vulnerability) -> Severity:
    found = Severity.UNSPECIFIED
    for rating in vulnerability.ratings or []:
        if rating.severity is not None:
            severity = SEVERITIES.get(rating.severity.lower())
            if severity is None:
                raise ReportError(
                    f"{vulnerability.id} has severity {rating.severity!r}, which CycloneDX does "
                    f"not define ({', '.join(SEVERITIES)})"
                )
        elif rating.score is not None:
            severity = band(rating.score)
        else:
            continue
        found = max(found, severity)
    return found


def _components(items: list[_Component] | None, into: dict[str, _Component]) -> None:
    for component in items or []:
        if component.bom_ref:
            into[component.bom_ref] = component
        _components(component.components, into)


def _image(component: _Component | None) -> tuple[frozenset[str], Platform | None]:
    if component is None:
        return frozenset(), None
    purl = _purl(component.purl or component.bom_ref)
    values = [p.value for p in component.properties or [] if p.name == _REPO_DIGEST]
    platform = None
    if purl is not None and purl.type == "oci":
        values.append(purl.version)
        qualifiers = purl.qualifiers if isinstance(purl.qualifiers, dict) else {}
        if qualifiers.get("arch"):
            platform = Platform(qualifiers.get("os"), qualifiers["arch"])
    return digests_in(values), platform


def parse(document: Any) -> ParsedReport:
    try:
        bom = _Bom.model_validate(document)
    except ValidationError as error:
        raise validation_problem(NAME, error) from None
    components: dict[str, _Component] = {}
    _components(bom.components, components)
    findings = []
    for vulnerability in bom.vulnerabilities or []:
        if vulnerability.analysis and vulnerability.analysis.state in DOES_NOT_APPLY:
            continue
        severity = _severity(vulnerability)
        match = _UPGRADE.match((vulnerability.recommendation or "").strip())
        for affected in vulnerability.affects or []:
            component = components.get(affected.ref)
            purl = _purl(component.purl if component else affected.ref)
            versions = affected.versions or []
            fixes = [v.version for v in versions if v.status == "unaffected" and v.version]
            if match:
                fixes.append(match["versions"])
            installed = next(
                (v.version for v in versions if v.status == "affected" and v.version),
                component.version if component else (purl.version if purl else None),
            )
            name = component.name if component and component.name else (purl.name if purl else "")
            findings.append(
                unbound(
                    vulnerability.id,
                    name or affected.ref,
                    installed,
                    ", ".join(dict.fromkeys(fixes)) or None,
                    bool(fixes),
                    severity,
                    purl.to_string() if purl else None,
                )
            )
    digests, platform = _image(bom.metadata.component if bom.metadata else None)
    return ParsedReport(NAME, digests, tuple(findings), platform, None)
