"""`cip check` without registries: listing, choosing checks, bases, plain manifests."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from cip.checks.catalog import CHECKS
from tests.cli import run_cip
from tests.unit.conftest import D1, D2, D3, write

PLAIN = """
registries:
- name: gcr.io/staging
  src: true
- name: us.gcr.io/prod
- name: eu.gcr.io/prod
images:
- name: app
  dmap:
    "{d1}": ["1.0"]
    "{d2}": ["2.0"]
"""


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    root = tmp_path / "repo"
    write(root / "promoter.yaml", PLAIN.format(d1=D1, d2=D2))
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    return root


def check(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cip("check", "--manifest=promoter.yaml", *args, cwd=root)


def test_list_names_every_check_with_its_description() -> None:
    done = run_cip("check", "--list")
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines] == [c.id for c in CHECKS]
    assert lines[-1].split(maxsplit=1) == [
        "provenance",
        "every added digest has provenance the policy accepts",
    ]


def test_chosen_checks_only_and_base_is_the_diff_base_alias(repo: Path) -> None:
    text = (repo / "promoter.yaml").read_text()
    (repo / "promoter.yaml").write_text(text.replace(f'"{D2}": ["2.0"]', f'"{D3}": ["1.0"]'))
    done = check(repo, "--base=HEAD", "--checks=overlap,removal", "--output=json")
    assert done.returncode == 1, done.stderr
    document = json.loads(done.stdout)
    statuses = {c["id"]: c["status"] for c in document["checks"]}
    assert statuses == {"manifest": "pass", "overlap": "fail", "removal": "warn"}
    overlap = [f for f in document["findings"] if f["check"] == "overlap"]
    assert overlap[0]["file"] == "promoter.yaml" and overlap[0]["line"] == 10
    removal = [f for f in document["findings"] if f["check"] == "removal"]
    assert removal[0]["message"].startswith(f"app {D2} (tags 2.0) was removed from the manifests")
    assert document["requests"] == {}  # neither check reads a registry
    skipped = check(repo, "--base=HEAD", "--skip-checks=tag-move,staging,size", "--checks=removal")
    assert [line.split()[:2] for line in skipped.stdout.splitlines()[2:4]] == [
        ["pass", "manifest"],
        ["warn", "removal"],
    ]


def test_a_base_is_required_and_prow_names_one(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    none = check(repo)
    assert none.returncode == 2
    assert "give one of --diff-base (--base), --manifest-diff-since" in none.stderr
    both = check(repo, "--base=HEAD", "--use-prow-manifest-diff")
    assert both.returncode == 2
    base = git(repo, "rev-parse", "HEAD")
    monkeypatch.setenv("JOB_TYPE", "presubmit")
    monkeypatch.setenv("PULL_BASE_SHA", base)
    prow = check(repo, "--use-prow-manifest-diff", "--checks=overlap", "--output=json")
    assert prow.returncode == 0, prow.stderr
    assert json.loads(prow.stdout)["change"]["base"] == {"ref": base, "commit": base}


def test_image_narrows_and_an_unknown_image_is_a_usage_error(repo: Path) -> None:
    text = (repo / "promoter.yaml").read_text()
    other = f'- name: other\n  dmap:\n    "{D3}": ["1"]\n'
    (repo / "promoter.yaml").write_text(text + other)
    narrowed = check(repo, "--base=HEAD", "--image=app", "--checks=overlap", "--output=json")
    assert narrowed.returncode == 0, narrowed.stderr
    assert json.loads(narrowed.stdout)["change"]["selected"] == 0  # only other changed
    typo = check(repo, "--base=HEAD", "--image=ap")
    assert typo.returncode == 2
    assert "--image: no image named 'ap' (did you mean 'app'?)" in typo.stderr


def test_nothing_changed_selects_nothing_and_passes(repo: Path) -> None:
    done = check(repo, "--base=HEAD")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 image digests changed, 0 added" in done.stdout
    assert "Checks: 6 passed, 3 skipped" in done.stdout


def test_a_path_outside_the_repository_is_a_usage_error(repo: Path, tmp_path: Path) -> None:
    outside = write(tmp_path / "elsewhere" / "m.yaml", PLAIN.format(d1=D1, d2=D2))
    done = run_cip("check", f"--manifest={outside}", "--base=HEAD", cwd=repo)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
