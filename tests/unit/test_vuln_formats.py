"""Report parsers on the formats' documented examples (tests/data/vuln, see its README);
reports of the real trivy are parsed in tests/e2e/test_vuln_reports.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cip.vuln.formats import ReportError, parse_text
from cip.vuln.formats.common import Platform
from cip.vuln.formats.sarif import band
from cip.vuln.model import Severity

DATA = Path(__file__).resolve().parents[1] / "data" / "vuln"
DIGEST = "sha256:" + "ab" * 32


def example(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8").replace("MANIFEST_DIGEST", DIGEST)


def test_grype_severities_fix_states_and_the_manifest_digest() -> None:
    report = parse_text(example("grype.json"))
    assert report.format == "Grype JSON report" and report.scanner == "grype 0.87.0"
    assert report.digests == {DIGEST}
    assert report.platform == Platform("linux", "amd64")
    found = {f.id: f for f in report.findings}
    critical = found["CVE-2099-1001"]
    assert (critical.severity, critical.package, critical.installed) == (
        Severity.CRITICAL, "openssl", "3.0.11-1~deb12u2",
    )  # fmt: skip
    assert critical.fixable and critical.fixed == "3.0.13-1~deb12u1"
    assert critical.purl == "pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64&distro=debian-12"
    assert (found["CVE-2099-1002"].severity, found["CVE-2099-1002"].fixable) == (
        Severity.HIGH, False,
    )  # fmt: skip
    # Negligible is upstream's MINIMAL, Unknown is 0; "wont-fix" names no fix.
    assert (found["CVE-2099-1003"].severity, found["CVE-2099-1003"].fixable) == (
        Severity.MINIMAL, False,
    )  # fmt: skip
    assert found["GHSA-xxxx-0000-0001"].severity is Severity.UNSPECIFIED
    assert found["GHSA-xxxx-0000-0001"].purl == "pkg:npm/left-pad@1.2.0"
    assert found["CVE-2099-1003"].purl is None


def test_grype_of_a_directory_names_no_digest() -> None:
    document = json.loads(example("grype.json"))
    document["source"] = {"type": "directory", "target": "/src"}
    assert parse_text(json.dumps(document)).digests == frozenset()


def test_cyclonedx_ratings_vex_and_fixes() -> None:
    report = parse_text(example("cyclonedx.json"))
    assert report.format == "CycloneDX BOM"
    assert report.digests == {DIGEST}  # the container's pkg:oci purl
    assert report.platform == Platform(None, "arm64")
    found = {f.id: f for f in report.findings}
    # not_affected (VEX) drops CVE-2018-7489 entirely.
    assert set(found) == {
        "SNYK-JAVA-COMFASTERXMLJACKSONCORE-32111",
        "CVE-2099-2001",
        "CVE-2099-2002",
    }
    snyk = found["SNYK-JAVA-COMFASTERXMLJACKSONCORE-32111"]
    assert snyk.severity is Severity.CRITICAL  # the highest of its ratings
    assert (snyk.package, snyk.installed) == ("jackson-databind", "2.9.4")
    assert snyk.fixable and snyk.fixed == "2.6.7.5, 2.8.11.1, 2.9.5"  # from the recommendation
    scored = found["CVE-2099-2001"]  # a rating with a score only is banded
    assert (scored.severity, scored.package, scored.fixed) == (Severity.HIGH, "minizip", "1.3.1")
    assert (
        found["CVE-2099-2002"].severity is Severity.MINIMAL and not found["CVE-2099-2002"].fixable
    )


@pytest.mark.parametrize(
    ("score", "severity"),
    [(10.0, Severity.CRITICAL), (9.0, Severity.CRITICAL), (8.9, Severity.HIGH),
     (7.0, Severity.HIGH), (6.9, Severity.MEDIUM), (4.0, Severity.MEDIUM),
     (3.9, Severity.LOW), (0.1, Severity.LOW), (0.0, Severity.UNSPECIFIED)],
)  # fmt: skip
def test_sarif_security_severity_bands(score: float, severity: Severity) -> None:
    assert band(score) is severity


def sarif(results: list[dict[str, object]], rules: list[dict[str, object]]) -> str:
    run = {"tool": {"driver": {"name": "Scanner", "version": "2", "rules": rules}},
           "results": results}  # fmt: skip
    return json.dumps({"version": "2.1.0", "runs": [run]})


def test_sarif_of_another_tool_knows_no_fix_and_suppressed_results_are_left_out() -> None:
    rules = [
        {"id": "CVE-1", "properties": {"security-severity": "9.1"}},
        {"id": "CVE-2", "properties": {"security-severity": "5"}},
    ]
    results: list[dict[str, object]] = [
        {"ruleId": "CVE-1", "message": {"text": "openssl is vulnerable"}},
        {"ruleId": "CVE-2", "ruleIndex": 1, "message": {"text": "x"},
         "properties": {"security-severity": "7.5"}},
        {"ruleId": "CVE-1", "message": {"text": "y"}, "suppressions": [{"kind": "external"}]},
    ]  # fmt: skip
    report = parse_text(sarif(results, rules))
    assert report.digests == frozenset() and report.scanner == "scanner 2"
    assert [(f.id, f.severity, f.fixable, f.package) for f in report.findings] == [
        ("CVE-1", Severity.CRITICAL, False, ""),
        ("CVE-2", Severity.HIGH, False, ""),  # the result's own score wins over its rule's
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{", "not JSON (line 1, column 2"),
        ("[]", "not a Trivy JSON, Grype JSON, SARIF 2.1.0 or CycloneDX JSON report"),
        ('{"SchemaVersion": 2, "Results": [{"Vulnerabilities": [{"Severity": "HIGH"}]}]}',
         "not a valid Trivy JSON report: Results.0.Vulnerabilities.0.VulnerabilityID: Field required"),
        ('{"SchemaVersion": 2, "Results": [{"Vulnerabilities": [{"VulnerabilityID": "C",'
         ' "Severity": "SEVERE"}]}]}', "C has severity 'SEVERE', which Trivy does not use"),
        ('{"SchemaVersion": 1, "Results": []}', "Trivy JSON schema version 1 (2 is read)"),
        ('{"version": "2.0.0", "runs": []}', "SARIF version 2.0.0 (2.1.0 is read)"),
        ('{"bomFormat": "CycloneDX", "specVersion": "1.5", "vulnerabilities": '
         '[{"id": "C", "ratings": [{"severity": "severe"}]}]}',
         "C has severity 'severe', which CycloneDX does not define"),
    ],
)  # fmt: skip
def test_what_is_no_report_says_why(text: str, problem: str) -> None:
    with pytest.raises(ReportError) as caught:
        parse_text(text)
    assert problem in str(caught.value)
