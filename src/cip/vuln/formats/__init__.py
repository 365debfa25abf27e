"""Report formats: Trivy JSON, Grype JSON, SARIF 2.1.0 and CycloneDX, told apart by content.

A cosign vulnerability predicate (`trivy --format cosign-vuln`) is read through its
`scanner.result`, which holds one of these reports.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from cip.vuln.formats import cyclonedx, grype, sarif, trivy
from cip.vuln.formats.common import ParsedReport, Platform, ReportError

__all__ = ["FORMATS", "ParsedReport", "Platform", "ReportError", "parse_document", "parse_text"]

Detect = Callable[[object], bool]
Parse = Callable[[Any], ParsedReport]
FORMATS: tuple[tuple[Detect, Parse], ...] = tuple(
    (module.looks_like, module.parse) for module in (trivy, grype, sarif, cyclonedx)
)
KNOWN = "a Trivy JSON, Grype JSON, SARIF 2.1.0 or CycloneDX JSON report"


def unwrap_predicate(document: Any) -> Any:
    """The report inside a cosign vulnerability predicate (`scanner.result`), else as is."""
    if isinstance(document, dict) and isinstance(document.get("scanner"), dict):
        result = document["scanner"].get("result")
        if result is not None:
            return result
    return document


def parse_document(document: Any) -> ParsedReport:
    """The findings of a decoded JSON report of any known format (ReportError otherwise)."""
    document = unwrap_predicate(document)
    for looks_like, parse in FORMATS:
        if looks_like(document):
            return parse(document)
    raise ReportError(f"not {KNOWN}")


def parse_text(text: str | bytes) -> ParsedReport:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ReportError(
            f"not JSON (line {error.lineno}, column {error.colno}: {error.msg}); {KNOWN} is "
            "expected"
        ) from None
    except UnicodeDecodeError:
        raise ReportError(f"not UTF-8 text; {KNOWN} is expected") from None
    return parse_document(document)
