"""Report parsers on what the real trivy wrote when it scanned the lab images: every format
gives the same findings, bound to the digest that was scanned."""

from __future__ import annotations

import pytest

from cip.vuln.formats import parse_text
from cip.vuln.formats.common import Platform
from cip.vuln.model import Severity
from tests.e2e.vuln_lab import APP, CLEAN, FORMATS, MULTI, Scanned, scanned

__all__ = ["scanned"]

EXPECTED = {
    ("CVE-2099-0001", Severity.CRITICAL, "openssl", "3.0.11-1~deb12u2", "3.0.13-1~deb12u1", True),
    ("CVE-2099-0002", Severity.LOW, "openssl", "3.0.11-1~deb12u2", "3.0.13-1~deb12u1", True),
    ("CVE-2099-0003", Severity.HIGH, "curl", "7.88.1-10+deb12u5", None, False),
}


@pytest.mark.parametrize("output", list(FORMATS))
def test_every_format_of_trivy_gives_the_same_findings_about_the_scanned_digest(
    scanned: Scanned, output: str
) -> None:
    report = parse_text(scanned.text(APP, output))
    assert {
        (f.id, f.severity, f.package, f.installed, f.fixed, f.fixable) for f in report.findings
    } == EXPECTED
    assert report.digests == {APP.digest}
    clean = parse_text(scanned.text(CLEAN, output))
    assert clean.findings == () and clean.digests == {CLEAN.digest}


def test_a_platform_of_an_index_is_named_as_trivy_saw_it(scanned: Scanned) -> None:
    amd64, arm64 = MULTI.children
    assert parse_text(scanned.text(arm64)).platform == Platform("linux", "arm64")
    assert parse_text(scanned.text(amd64)).digests == {amd64.digest}
    # CycloneDX names the architecture in the image's purl only.
    assert parse_text(scanned.text(arm64, "cyclonedx")).platform == Platform(None, "arm64")
    assert parse_text(scanned.text(arm64, "sarif")).platform is None
