"""`cip check --vuln-severity-threshold`: the `vulnerabilities` check on a pull request, with
reports the real trivy wrote, trivy run by cip, and signed attestations."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.vuln_lab import (
    APP,
    CLEAN,
    MULTI,
    Scanned,
    attach,
    logging_trivy,
    scanned,
    trivy_binary,
    trivy_cache,
    trivy_env,
    vuln_attestation,
)
from tests.e2e.vuln_lab import (
    VULN_PREDICATE as VULN,
)
from tests.e2e.vuln_repo import IMAGES, VulnRepo, open_vuln_repo
from tests.lab.registry_lab import LabRegistry
from tests.trust.keyfiles import openssl_keypair

__all__ = ["scanned"]


@pytest.fixture
def repo(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> VulnRepo:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    return open_vuln_repo(registry_factory, tmp_path / "repo")


def reports_for_all(scanned: Scanned, folder: Path) -> Path:
    """One Trivy JSON report per scanned manifest, under names that say nothing: each is bound
    by the digest its metadata names."""
    scanned.write(folder, "app.json", APP)
    scanned.write(folder, "clean.json", CLEAN)
    for index, child in enumerate(MULTI.children):
        scanned.write(folder, f"multi-{index}.json", child)
    return folder


def findings(document: dict[str, object]) -> list[dict[str, object]]:
    found = document["findings"]
    assert isinstance(found, list)
    return found


def test_a_fixable_finding_at_the_threshold_fails_its_image_at_its_manifest_line(
    repo: VulnRepo, scanned: Scanned, tmp_path: Path
) -> None:
    reports = reports_for_all(scanned, tmp_path / "reports")
    done = repo.check("--vuln-severity-threshold=HIGH", f"--vuln-report={reports}")
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert "  fail     vulnerabilities" in out
    line = repo.line_of(APP)
    assert (
        f"{IMAGES}:{line}:5: error: [vulnerabilities] app {APP.digest} fails: CVE-2099-0001 "
        "CRITICAL in openssl 3.0.11-1~deb12u2, fixed in 3.0.13-1~deb12u1 (Trivy JSON report by "
        f"trivy 0.76.0 {reports / 'app.json'}); 1 finding with a fix at or above HIGH"
    ) in out
    # The index fails through its platforms, each named.
    multi = repo.line_of(MULTI)
    amd64, arm64 = (child.digest[7:19] for child in MULTI.children)
    assert (
        f"{IMAGES}:{multi}:5: error: [vulnerabilities] multi {MULTI.digest} fails: CVE-2099-0001 "
        f"CRITICAL in openssl 3.0.11-1~deb12u2, fixed in 3.0.13-1~deb12u1 on linux/amd64 "
        f"({amd64}), linux/arm64 ({arm64}) (Trivy JSON report"
    ) in out
    assert "2 findings with a fix at or above HIGH" in out
    assert "clean" not in out

    document = json.loads(
        repo.check(
            "--vuln-severity-threshold=4", f"--vuln-report={reports}", "--output=json"
        ).stdout
    )
    statuses = {c["id"]: c["status"] for c in document["checks"]}
    assert statuses["vulnerabilities"] == "fail"
    errors = [f for f in findings(document) if f["severity"] == "error"]
    assert sorted((f["image"], f["file"], f["line"]) for f in errors) == [
        ("app", IMAGES, line),
        ("multi", IMAGES, multi),
    ]
    assert {f["digest"] for f in errors} == {APP.digest, MULTI.digest}


def allowlist(path: Path, *entries: str) -> Path:
    path.write_text("vulnerabilities:\n" + "".join(entries), encoding="utf-8")
    return path


def test_only_fixable_findings_count_unless_unfixed_ones_are_included(
    repo: VulnRepo, scanned: Scanned, tmp_path: Path
) -> None:
    reports = reports_for_all(scanned, tmp_path / "reports")
    # CVE-2099-0001 is allowed; what is left at HIGH is CVE-2099-0003, which has no fix.
    allowed = allowlist(
        tmp_path / ".trivyignore.yaml",
        "  - id: CVE-2099-0001\n    statement: rebuilt next sprint\n    expired_at: 2999-12-31\n",
    )
    flags = ("--vuln-severity-threshold=HIGH", f"--vuln-report={reports}")
    passing = repo.check(*flags, f"--vuln-allowlist={allowed}")
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert "  pass     vulnerabilities" in passing.stdout

    unfixed = repo.check(*flags, f"--vuln-allowlist={allowed}", "--vuln-include-unfixed")
    assert unfixed.returncode == 1, unfixed.stdout + unfixed.stderr
    assert (
        f"app {APP.digest} fails: CVE-2099-0003 HIGH in curl 7.88.1-10+deb12u5, no fix named"
    ) in unfixed.stdout
    assert "1 finding at or above HIGH" in unfixed.stdout  # not "with a fix": all count

    # LOW counts CVE-2099-0002 (fixed), which HIGH left out.
    low = repo.check("--vuln-severity-threshold=2", f"--vuln-report={reports}",
                     f"--vuln-allowlist={allowed}")  # fmt: skip
    assert low.returncode == 1
    assert f"app {APP.digest} fails: CVE-2099-0002 LOW in openssl" in low.stdout


def test_an_expired_allowlist_entry_counts_again_and_is_reported_at_its_line(
    repo: VulnRepo, scanned: Scanned, tmp_path: Path
) -> None:
    reports = reports_for_all(scanned, tmp_path / "reports")
    allowed = allowlist(
        tmp_path / ".trivyignore.yaml",
        "  - id: CVE-2099-0002\n",
        "  - id: CVE-2099-0001\n    statement: until the rebuild\n    expired_at: 2001-01-01\n",
    )
    done = repo.check(
        "--vuln-severity-threshold=CRITICAL", f"--vuln-report={reports}",
        f"--vuln-allowlist={allowed}", "--output=json",
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    found = findings(json.loads(done.stdout))
    errors = {f["image"] for f in found if f["severity"] == "error"}
    assert errors == {"app", "multi"}
    expired = [f for f in found if f["file"] == str(allowed)]
    assert expired and all(f["severity"] == "warning" and f["line"] == 3 for f in expired)
    assert {f["image"] for f in expired} == {"app", "multi"}
    assert (
        "allowlist entry CVE-2099-0001 expired on 2001-01-01: CVE-2099-0001 in openssl counts again"
    ) in expired[0]["message"]


def test_a_report_about_another_digest_is_not_used_and_said_so(
    repo: VulnRepo, scanned: Scanned, tmp_path: Path
) -> None:
    reports = reports_for_all(scanned, tmp_path / "reports")
    (reports / "app.json").unlink()
    # Named for APP, but the report inside is CLEAN's: its metadata wins, APP has no report.
    wrong = scanned.write(reports, f"sha256-{APP.digest[7:]}.json", CLEAN)
    done = repo.check("--vuln-severity-threshold=HIGH", f"--vuln-report={reports}")
    assert done.returncode == 1, done.stdout + done.stderr
    line = repo.line_of(APP)
    assert (
        f"{IMAGES}:{line}:5: error: [vulnerabilities] app {APP.digest} fails: no vulnerability report, "
        "scan or attestation is about it (--on-missing-report=fail)"
    ) in done.stdout
    assert (
        f"{IMAGES}:{line}:5: warning: [vulnerabilities] {wrong} is named for {APP.digest[7:19]} "
        f"but its Trivy JSON report is about {CLEAN.digest}: not used for {APP.digest} "
        f"(image app {APP.digest})"
    ) in done.stdout
    assert "CVE-2099-0001" not in done.stdout.split("multi")[0]  # nothing of CLEAN's for APP


def test_a_missing_report_fails_by_default_and_only_warns_when_asked(
    repo: VulnRepo, scanned: Scanned, tmp_path: Path
) -> None:
    reports = tmp_path / "reports"
    scanned.write(reports, "clean.json", CLEAN)
    scanned.write(reports, "amd64.json", MULTI.children[0])  # arm64 has none
    allowed = allowlist(tmp_path / "allow.yaml", "  - id: CVE-2099-0001\n")
    flags = ("--vuln-severity-threshold=HIGH", f"--vuln-report={reports}",
             f"--vuln-allowlist={allowed}")  # fmt: skip
    failing = repo.check(*flags, "--output=json")
    assert failing.returncode == 1
    errors = {f["image"]: f["message"] for f in findings(json.loads(failing.stdout))}
    assert errors["app"].endswith(
        "no vulnerability report, scan or attestation is about it (--on-missing-report=fail)"
    )
    arm64 = MULTI.children[1].digest[7:19]
    assert errors["multi"].endswith(
        f"no vulnerability report, scan or attestation is about linux/arm64 ({arm64}) "
        "(--on-missing-report=fail)"
    )
    warned = repo.check(*flags, "--on-missing-report=warn", "--output=json")
    assert warned.returncode == 0, warned.stdout
    document = json.loads(warned.stdout)
    assert {c["id"]: c["status"] for c in document["checks"]}["vulnerabilities"] == "warn"
    assert {(f["image"], f["severity"]) for f in findings(document)} == {
        ("app", "warning"),
        ("multi", "warning"),
    }


def test_sarif_and_cyclonedx_reports_judge_as_the_json_does(
    repo: VulnRepo, scanned: Scanned, tmp_path: Path
) -> None:
    for output in ("sarif", "cyclonedx"):
        reports = tmp_path / output
        for image in (APP, CLEAN, *MULTI.children):
            scanned.write_named(reports, image, output)
        done = repo.check("--vuln-severity-threshold=HIGH", f"--vuln-report={reports}")
        assert done.returncode == 1, done.stdout + done.stderr
        assert (
            f"app {APP.digest} fails: CVE-2099-0001 CRITICAL in openssl 3.0.11-1~deb12u2, fixed in "
            "3.0.13-1~deb12u1"
        ) in done.stdout, output
        assert "CVE-2099-0003" not in done.stdout  # unfixed in every format


def test_trivy_run_by_cip_scans_every_platform_by_digest(repo: VulnRepo, tmp_path: Path) -> None:
    trivy, calls = logging_trivy(tmp_path / "bin", trivy_binary())
    env = trivy_env(trivy_cache(tmp_path / "cache"))
    done = repo.check(
        "--vuln-severity-threshold=CRITICAL", f"--trivy={trivy}", "--trivy-offline", env=env
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"app {APP.digest} fails: CVE-2099-0001 CRITICAL in openssl" in done.stdout
    assert "(trivy scan (trivy 0.76.0))" in done.stdout
    assert f"multi {MULTI.digest} fails: CVE-2099-0001 CRITICAL" in done.stdout
    scanned_refs = sorted(call[-1].rsplit("@", 1)[1] for call in calls())
    expected = [APP, CLEAN, *MULTI.children]
    assert scanned_refs == sorted(image.digest for image in expected)  # the index itself: never
    assert all("--offline-scan" in call and "--insecure" in call for call in calls())

    # --scanner trivy finds it on PATH.
    path_env = {**env, "PATH": f"{trivy.parent}:{env['PATH']}"}
    by_name = repo.check(
        "--vuln-severity-threshold=CRITICAL", "--scanner=trivy", "--trivy-offline",
        "--image=clean", env=path_env,
    )  # fmt: skip
    assert by_name.returncode == 0, by_name.stdout + by_name.stderr
    assert len(calls()) == len(expected) + 1


def test_signed_vulnerability_attestations_count_and_others_are_not_used(
    repo: VulnRepo, scanned: Scanned, tmp_path: Path
) -> None:
    trusted = openssl_keypair(tmp_path / "keys", "trusted")
    other = openssl_keypair(tmp_path / "keys", "other")
    provenance = "https://slsa.dev/provenance/v1"
    attach(repo.staging, "staging/app", APP, [
        (vuln_attestation(trusted.private, APP.digest, scanned.text(APP, "cosign-vuln")), VULN),
        (vuln_attestation(trusted.private, APP.digest, "{}", provenance), provenance),
    ])  # fmt: skip
    attach(repo.staging, "staging/clean", CLEAN, [
        (vuln_attestation(other.private, CLEAN.digest, scanned.text(CLEAN, "cosign-vuln")), VULN),
        (vuln_attestation(trusted.private, APP.digest, scanned.text(APP, "cosign-vuln")), VULN),
    ])  # fmt: skip
    done = repo.check(
        "--vuln-severity-threshold=HIGH", f"--verify-key={trusted.public}",
        "--image=app", "--image=clean",
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert (
        f"app {APP.digest} fails: CVE-2099-0001 CRITICAL in openssl 3.0.11-1~deb12u2, fixed in "
        "3.0.13-1~deb12u1 (attestation by pkg:github/aquasecurity/trivy@0.76.0, signed ("
        f"{repo.staging.host}/staging/app:sha256-{APP.digest[7:]}.att"
    ) in out
    assert f"clean {CLEAN.digest} fails: no vulnerability report, scan or attestation" in out
    assert "is not signed by --verify-key (sha256:" in out
    assert f"is about {APP.digest}, not {CLEAN.digest}: not used" in out
    assert "slsa" not in out  # other attestations are not findings, and not worth a word


def test_a_grype_report_binds_by_its_manifest_digest(repo: VulnRepo, tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[1] / "data" / "vuln" / "grype.json"
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "grype-app.json").write_text(
        example.read_text().replace("MANIFEST_DIGEST", APP.digest)
    )
    done = repo.check("--vuln-severity-threshold=HIGH", f"--vuln-report={reports}", "--image=app")
    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        f"app {APP.digest} fails: CVE-2099-1001 CRITICAL in openssl 3.0.11-1~deb12u2, fixed in "
        f"3.0.13-1~deb12u1 (Grype JSON report by grype 0.87.0 {reports / 'grype-app.json'}); 1 "
        "finding with a fix at or above HIGH"
    ) in done.stdout


def test_a_report_about_an_index_covers_the_platform_it_names(
    repo: VulnRepo, scanned: Scanned, tmp_path: Path
) -> None:
    reports = tmp_path / "reports"
    scanned.write(reports, "multi.json", MULTI)  # trivy scanned linux/amd64 of the index
    allowed = allowlist(tmp_path / "allow.yaml", "  - id: CVE-2099-0001\n")
    flags = ("--vuln-severity-threshold=HIGH", f"--vuln-report={reports}",
             f"--vuln-allowlist={allowed}", "--image=multi")  # fmt: skip
    done = repo.check(*flags)
    assert done.returncode == 1, done.stdout + done.stderr
    arm64 = MULTI.children[1].digest[7:19]
    assert (
        f"multi {MULTI.digest} fails: no vulnerability report, scan or attestation is about "
        f"linux/arm64 ({arm64}) (--on-missing-report=fail)"
    ) in done.stdout
    warned = repo.check(*flags, "--vuln-include-unfixed", "--on-missing-report=warn")
    assert warned.returncode == 1  # what the amd64 report found still counts
    amd64 = MULTI.children[0].digest[7:19]
    assert (
        f"CVE-2099-0003 HIGH in curl 7.88.1-10+deb12u5, no fix named on linux/amd64 ({amd64})"
        in (warned.stdout)
    )
    assert f"about linux/arm64 ({arm64}) (--on-missing-report=warn)" in warned.stdout


def test_a_new_tag_on_a_vulnerable_digest_is_judged_and_a_removed_one_is_not(
    repo: VulnRepo, scanned: Scanned, tmp_path: Path
) -> None:
    reports = reports_for_all(scanned, tmp_path / "reports")
    repo.git("add", "-A")
    repo.git("commit", "-qm", "promote app, multi and clean")
    repo.base = repo.git("rev-parse", "HEAD")
    text = (repo.root / IMAGES).read_text()
    flags = ("--vuln-severity-threshold=HIGH", f"--vuln-report={reports}", "--output=json")
    (repo.root / IMAGES).write_text(
        text.replace(f'"{APP.digest}": ["1.0"]', f'"{APP.digest}": ["1.0", "1.1"]')
    )
    retagged = repo.check(*flags)
    document = json.loads(retagged.stdout)
    assert retagged.returncode == 1 and document["change"]["added"] == 0
    assert {f["image"] for f in findings(document)} == {"app"}

    (repo.root / IMAGES).write_text(
        text.replace(f'"{MULTI.digest}": ["1.0"]', f'"{MULTI.digest}": []')
    )
    untagged = repo.check(*flags)
    document = json.loads(untagged.stdout)
    assert untagged.returncode == 0, untagged.stdout
    assert document["change"]["selected"] == 1 and findings(document) == []
