"""What `cip check` hands to reviewers: markdown and SARIF (golden files), GitHub annotations
and the step summary. Golden files hold placeholders for registry ports and commit ids;
`CIP_UPDATE_GOLDEN=1` rewrites them from the current output (review the diff)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from cip import __version__
from tests.e2e.check_repo import IMAGES, PullRequest, entry, open_pull_request
from tests.lab.registry_lab import LabRegistry

GOLDEN = Path(__file__).parent / "golden"
LOST = "sha256:" + "e" * 64


@pytest.fixture
def pr(
    registry_factory: Callable[..., LabRegistry],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> PullRequest:
    """A pull request with one finding per kind: a tag move, a removal, a digest staging lacks,
    committed, so --head names it."""
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    pr = open_pull_request(registry_factory, tmp_path / "repo")
    images = entry("app", (pr.app, ["latest"]), (pr.new, ["1.0"])) + f'    "{LOST}": ["9"]\n'
    pr.write_images(images)
    pr.commit("move 1.0, drop tool, add a digest staging lacks")
    return pr


def golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("CIP_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert actual == path.read_text(encoding="utf-8")


def test_markdown_matches_the_golden_file(pr: PullRequest) -> None:
    done = pr.check("--head", "HEAD", "--output", "markdown")
    assert done.returncode == 1, done.stderr
    golden("check.md", pr.normalise(done.stdout))


def test_sarif_matches_the_golden_file_and_is_what_code_scanning_reads(pr: PullRequest) -> None:
    done = pr.check("--head", "HEAD", "--output", "sarif")
    assert done.returncode == 1, done.stderr
    document = json.loads(done.stdout)
    assert document["version"] == "2.1.0"
    [run] = document["runs"]
    rules = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    for result in run["results"]:
        assert rules[result["ruleIndex"]] == result["ruleId"]
        assert result["level"] in ("error", "warning") and result["message"]["text"]
        [location] = result["locations"]
        assert location["physicalLocation"]["artifactLocation"]["uri"] == IMAGES
        assert location["physicalLocation"]["region"]["startLine"] >= 1
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert [n["descriptor"]["id"] for n in notes] == ["vulnerabilities", "signature", "provenance"]
    assert all(n["level"] == "note" for n in notes)
    # Fingerprints hash the real messages (registry ports included): stable across runs, so
    # code scanning keeps one alert per finding; the golden file holds a placeholder.
    again = json.loads(pr.check("--head", "HEAD", "--output", "sarif").stdout)
    fingerprints = [r["partialFingerprints"] for r in run["results"]]
    assert fingerprints == [r["partialFingerprints"] for r in again["runs"][0]["results"]]
    text = pr.normalise(done.stdout).replace(f'"version": "{__version__}"', '"version": "VERSION"')
    text = re.sub(r'"cipFinding/v1": "[0-9a-f]{64}"', '"cipFinding/v1": "FINGERPRINT"', text)
    golden("check.sarif", text)


def test_github_actions_annotations_and_step_summary(
    pr: PullRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    done = pr.check("--head", "HEAD", "--output=json")
    assert done.returncode == 1
    annotations = [line for line in done.stderr.splitlines() if line.startswith("::")]
    line = pr.line_of(pr.new.digest)
    assert (
        f"::error file={IMAGES},line={line},col=5,title=cip check%3A tag-move::tag 1.0 of app is "
        f"{pr.app.digest} at {pr.production.host}/prod/app; the change points it at "
        f"{pr.new.digest[7:19]}: tags never move"
    ) in annotations
    assert (
        f"::warning file={IMAGES},title=cip check%3A removal::tool {pr.tool.digest} (tags 0.1) "
        "was removed from the manifests (line 6 at the base): promoted images are never "
        "unpromoted silently"
    ) in annotations
    assert len(annotations) == 3
    markdown = pr.check("--head", "HEAD", "--output=markdown")
    written = summary.read_text()
    assert written.startswith("earlier step\n### cip check: 2 failed, 1 warned")
    assert written.endswith(markdown.stdout + "\n")  # appended once per run, same text
