"""GitHub Actions workflow commands: findings as `::error file=…,line=…::message` annotations.

The runner shows them on the pull request's changed lines. Values are escaped as the runner
reads them back (`%`, CR and LF everywhere; `:` and `,` also inside properties), so a message
that holds a colon or a newline cannot end the command early.
"""

from __future__ import annotations

from cip.checks.catalog import CheckReport
from cip.checks.findings import Finding


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(report: CheckReport, finding: Finding) -> str:
    properties: list[str] = []
    if finding.file is not None:
        properties.append(f"file={_property(report.change.relative(finding.file))}")
        if finding.line is not None:
            properties.append(f"line={finding.line}")
            if finding.column is not None:
                properties.append(f"col={finding.column}")
    properties.append(f"title={_property(f'cip check: {finding.check}')}")
    return f"::{finding.severity} {','.join(properties)}::{_data(finding.message)}"


def workflow_commands(report: CheckReport) -> list[str]:
    return [annotation(report, finding) for finding in report.findings]
