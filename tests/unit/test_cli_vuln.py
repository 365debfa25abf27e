"""The vulnerability gate's flags through the CLI: every flag is used or refused, and bad
policy or report files are named with their lines before any registry is read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli import run_cip
from tests.unit.conftest import D1, write

MANIFEST = (
    "registries:\n- name: oci:staging\n  src: true\n- name: oci:production\nimages:\n"
    f'- name: app\n  dmap:\n    "{D1}": ["1.0"]\n'
)


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    return write(tmp_path / "promoter.yaml", MANIFEST)


def run(manifest: Path, *args: str) -> tuple[int, str]:
    done = run_cip("run", f"--manifest={manifest}", *args)
    assert "Traceback" not in done.stderr
    return done.returncode, done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--vuln-report=reports"], "--vuln-report: needs --vuln-severity-threshold"),
        (["--vuln-include-unfixed", "--on-missing-report=warn"],
         "--vuln-include-unfixed, --on-missing-report: needs --vuln-severity-threshold"),
        (["--vuln-severity-threshold=SEVERE"], "'SEVERE' is not a severity (0 off, 1 MINIMAL"),
        (["--vuln-severity-threshold=6"], "'6' is not a severity"),
        (["--vuln-severity-threshold=HIGH"],
         "--vuln-severity-threshold needs a source of findings: --vuln-report DIR, --trivy PATH"),
        (["--vuln-severity-threshold=HIGH", "--trivy=/nonexistent/trivy"],
         "--trivy=/nonexistent/trivy: not an executable file"),
        (["--vuln-severity-threshold=HIGH", "--vuln-report=.", "--trivy-offline"],
         "--trivy-db-repository and --trivy-offline need --trivy or --scanner trivy"),
        (["--vuln-severity-threshold=HIGH", "--scanner=grype"], "'grype' is not 'trivy'"),
        (["--vuln-severity-threshold=HIGH", "--vuln-report=/nonexistent"],
         "--vuln-report=/nonexistent: not a folder"),
        (["--vuln-severity-threshold=HIGH", "--verify-key=/nonexistent.pub"],
         "--verify-key=/nonexistent.pub: cannot read the key"),
        (["--vuln-severity-threshold=1", "--vuln-report=.", "--parse-only"],
         "the vulnerability gate's flags cannot be combined with --parse-only or a snapshot"),
    ],
)  # fmt: skip
def test_flags_the_gate_cannot_use_are_refused(
    manifest: Path, args: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(manifest.parent)
    code, stderr = run(manifest, *args)
    assert code == 2 and message in stderr, stderr


def test_an_allowlist_is_read_strictly_with_lines(manifest: Path, tmp_path: Path) -> None:
    allowlist = write(
        tmp_path / ".trivyignore.yaml",
        """
        vulnerabilities:
          - id: CVE-2099-0001
            expired_at: someday
          - statement: no id
          - id: CVE-2099-0002
            paths: [usr/lib/x]
          - id: CVE-2099-0003
            reason: typo
        misconfigurations:
          - id: AVD-DS-0002
        """,
    )
    done = run_cip(
        "run", f"--manifest={manifest}", "--vuln-severity-threshold=HIGH",
        f"--vuln-report={tmp_path}", f"--vuln-allowlist={allowlist}", "--output=json",
    )  # fmt: skip
    assert done.returncode == 2
    errors = [(e["line"], e["message"]) for e in json.loads(done.stdout)["errors"]]
    assert errors == [
        (3, "expired_at 'someday' is not a date (YYYY-MM-DD)"),
        (4, "an allowlist entry needs an id (a vulnerability id such as CVE-…)"),
        (6, "paths narrows an entry to some packages, which cip does not apply; list the id "
            "alone (it then covers every package) or drop the entry"),
        (8, "unknown field 'reason' (known: id, statement, expired_at)"),
    ]  # fmt: skip
    assert f"{allowlist}:3:17: error: expired_at 'someday'" in done.stderr


def test_every_unusable_report_is_named_at_once(manifest: Path, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    write(reports / "broken.json", '{"SchemaVersion": 2,\n  "Results": [}\n')
    write(reports / "other.json", '{"hello": "world"}')
    write(reports / "nested" / "unbound.json", '{"SchemaVersion": 2, "Results": []}')
    write(reports / "notes.txt", "not a report: never read")
    write(reports / f"sha256-{'c' * 64}.sarif", '{"version": "2.1.0", "runs": []}')  # bound
    done = run_cip(
        "run", f"--manifest={manifest}", "--vuln-severity-threshold=HIGH",
        f"--vuln-report={reports}",
    )  # fmt: skip
    assert done.returncode == 2
    assert f"{reports}/broken.json: error: not JSON (line 2, column 15" in done.stderr
    assert (
        f"{reports}/other.json: error: not a Trivy JSON, Grype JSON, SARIF 2.1.0 or CycloneDX "
        "JSON report"
    ) in done.stderr
    assert (
        f"{reports}/nested/unbound.json: error: this Trivy JSON report names no image digest: "
        "neither its content nor its file name (sha256-<hex>.json)"
    ) in done.stderr
    assert "notes.txt" not in done.stderr and ".sarif" not in done.stderr
    assert "3 unusable vulnerability reports" in done.stderr


def test_severity_names_and_numbers_and_zero_turns_the_gate_off(manifest: Path) -> None:
    # 0 is upstream's "off": nothing is read for the gate, not even the folder named.
    code, stderr = run(manifest, "--vuln-severity-threshold=0", "--vuln-report=/nonexistent",
                       "--parse-only=false")  # fmt: skip
    assert "--vuln-report" not in stderr and "vulnerab" not in stderr, stderr
    for value in ("critical", "Medium", "3", "minimal"):
        code, stderr = run(manifest, f"--vuln-severity-threshold={value}", "--vuln-report=/x")
        assert code == 2 and "--vuln-report=/x: not a folder" in stderr, (value, stderr)
