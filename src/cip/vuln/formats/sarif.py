"""SARIF 2.1.0 from a vulnerability scanner (Trivy's `--format sarif`, GitHub code scanning).

Severity is the CVSS-like `security-severity` property of the result or of its rule, banded as
GitHub bands it: at least 9.0 CRITICAL, 7.0 HIGH, 4.0 MEDIUM, 0.1 LOW, else 0 (unrated). SARIF
has no field for a package or a fix; Trivy writes them into the message as `Package:`,
`Installed Version:` and `Fixed Version:` lines, which are read when present, so results of
other tools have no known fix (they count only with --vuln-include-unfixed). Results with a
suppression are left out. The image is Trivy's `runs[].properties.repoDigests`.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from cip.vuln.formats.common import (
    ParsedReport,
    ReportError,
    digests_in,
    unbound,
    validation_problem,
)
from cip.vuln.model import Severity

NAME = "SARIF 2.1.0 log"
SECURITY_SEVERITY = "security-severity"
BANDS = (
    (9.0, Severity.CRITICAL),
    (7.0, Severity.HIGH),
    (4.0, Severity.MEDIUM),
    (0.1, Severity.LOW),
)
_TRIVY_LINE = re.compile(r"^(Package|Installed Version|Fixed Version): ?(.*)$", re.MULTILINE)


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, extra="ignore", frozen=True)


class _Message(_Model):
    text: str | None = None


class _Rule(_Model):
    id: str
    properties: dict[str, Any] | None = None


class _Driver(_Model):
    name: str = ""
    version: str | None = None
    rules: list[_Rule] | None = None


class _Tool(_Model):
    driver: _Driver


class _Result(_Model):
    rule_id: str | None = None
    rule_index: int | None = None
    message: _Message | None = None
    properties: dict[str, Any] | None = None
    suppressions: list[Any] | None = None


class _Run(_Model):
    tool: _Tool
    results: list[_Result] | None = None
    properties: dict[str, Any] | None = None


class _Log(_Model):
    version: str
    runs: list[_Run]


def looks_like(document: object) -> bool:
    return isinstance(document, dict) and "runs" in document and "version" in document


def band(score: float) -> Severity:
    for floor, severity in BANDS:
        if score >= floor:
            return severity
    return Severity.UNSPECIFIED


def _score(*properties: dict[str, Any] | None) -> Severity:
    for found in properties:
        value = (found or {}).get(SECURITY_SEVERITY)
        if value is None:
            continue
        try:
            return band(float(value))
        except (TypeError, ValueError):
            raise ReportError(f"{SECURITY_SEVERITY} {value!r} is not a number") from None
    return Severity.UNSPECIFIED


def _rule(run: _Run, result: _Result) -> _Rule | None:
    rules = run.tool.driver.rules or []
    if result.rule_index is not None and 0 <= result.rule_index < len(rules):
        return rules[result.rule_index]
    return next((rule for rule in rules if rule.id == result.rule_id), None)


def parse(document: Any) -> ParsedReport:
    try:
        log = _Log.model_validate(document)
    except ValidationError as error:
        raise validation_problem(NAME, error) from None
    if log.version != "2.1.0":
        raise ReportError(f"SARIF version {log.version} (2.1.0 is read)")
    findings = []
    digests: set[str] = set()
    scanners: list[str] = []
    for run in log.runs:
        driver = run.tool.driver
        scanners.append(" ".join(p for p in (driver.name.lower(), driver.version) if p))
        digests.update(digests_in((run.properties or {}).get("repoDigests") or []))
        for result in run.results or []:
            if result.suppressions:
                continue
            rule = _rule(run, result)
            rule_id = result.rule_id or (rule.id if rule else None)
            if rule_id is None:
                raise ReportError("a result names no rule (ruleId or ruleIndex)")
            lines = dict(_TRIVY_LINE.findall((result.message.text if result.message else "") or ""))
            fixed = lines.get("Fixed Version", "").strip() or None
            findings.append(
                unbound(
                    rule_id,
                    lines.get("Package", "").strip(),
                    lines.get("Installed Version", "").strip() or None,
                    fixed,
                    fixed is not None,
                    _score(result.properties, rule.properties if rule else None),
                )
            )
    scanner = ", ".join(sorted(set(filter(None, scanners)))) or None
    return ParsedReport(NAME, frozenset(digests), tuple(findings), None, scanner)
