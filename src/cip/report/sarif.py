"""SARIF 2.1.0 for code scanning: one run of the `cip` tool, one rule per check.

Written as plain JSON: the document is a handful of objects of a fixed shape, and the Python
SARIF packages are an unmaintained object model that needs jsonpickle to serialise, or models
that accept anything. Locations are relative to the repository, as code scanning resolves
them; a skipped check becomes a tool notification of level `note`, never a passing result.
"""

from __future__ import annotations

import hashlib
import json

from cip import __version__
from cip.checks.catalog import CHECKS, CheckReport
from cip.checks.findings import Finding

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
_WARNING_BY_DEFAULT = frozenset({"removal"})  # an error only with --forbid-removal


def _rules() -> list[dict[str, object]]:
    return [
        {
            "id": check.id,
            "name": "".join(part.capitalize() for part in check.id.split("-")),
            "shortDescription": {"text": check.description},
            "defaultConfiguration": {
                "level": "warning" if check.id in _WARNING_BY_DEFAULT else "error"
            },
        }
        for check in CHECKS
    ]


def _location(report: CheckReport, finding: Finding) -> list[dict[str, object]]:
    if finding.file is None:
        return []
    region: dict[str, int] = {"startLine": finding.line or 1}
    if finding.column is not None:
        region["startColumn"] = finding.column
    physical = {
        "artifactLocation": {"uri": report.change.relative(finding.file)},
        "region": region,
    }
    return [{"physicalLocation": physical}]


def _fingerprint(report: CheckReport, finding: Finding) -> str:
    """Stable across runs for the same finding, so code scanning tracks one alert."""
    parts = (
        finding.check,
        report.change.relative(finding.file) if finding.file else "",
        finding.image or "",
        finding.digest or "",
        finding.message,
    )
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def check_sarif(report: CheckReport) -> str:
    index = {check.id: position for position, check in enumerate(CHECKS)}
    results = [
        {
            "ruleId": finding.check,
            "ruleIndex": index[finding.check],
            "level": finding.severity,
            "message": {"text": finding.message},
            "locations": _location(report, finding),
            "partialFingerprints": {"cipFinding/v1": _fingerprint(report, finding)},
        }
        for finding in report.findings
    ]
    notes = [
        {
            "level": "note",
            "message": {"text": f"{result.id}: skipped: {result.note}"},
            "descriptor": {"id": result.id, "index": index[result.id]},
        }
        for result in report.results
        if result.status == "skipped"
    ]
    document = {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "cip",
                        "version": __version__,
                        "rules": _rules(),
                    }
                },
                "invocations": [
                    {
                        "executionSuccessful": True,
                        "exitCode": int(report.exit_code),
                        "toolExecutionNotifications": notes,
                    }
                ],
                "results": results,
            }
        ],
    }
    return json.dumps(document, indent=2)
