"""`cip audit serve --manifests-git`: the auditor follows the manifest repository.

A real git repository on disk stands for the manifest repository: a commit that adds an image
turns its rejected event into a verified one after `POST /refresh` (or the periodic refresh);
a commit whose manifests are invalid keeps the previous set, says why and is counted; the
commit in use is on /healthz and in every decision's log line.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.cli import run_cip
from tests.e2e.auditor import TOKEN, RunningAuditor, running_auditor
from tests.lab.registry_lab import LabRegistry, free_port

PROMOTED = "sha256:" + "0" * 64
ADDED = "sha256:" + "1" * 64
AUTH = {"Authorization": f"Bearer {TOKEN}"}
GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "Lab",
    "GIT_AUTHOR_EMAIL": "lab@lab.example",
    "GIT_COMMITTER_NAME": "Lab",
    "GIT_COMMITTER_EMAIL": "lab@lab.example",
}


class ManifestRepository:
    """A git repository holding a thin manifest folder `registry.lab/` on branch `main`,
    promoting to `foo/` of a lab registry (read when an unknown digest is judged)."""

    def __init__(self, folder: Path, prod: LabRegistry) -> None:
        self.folder = folder
        self.prod = f"{prod.host}/foo"
        self.staging = f"{prod.host}/staging/foo"
        folder.mkdir()
        self.git("init", "--quiet", "--initial-branch=main")
        registries = folder / "registry.lab" / "manifests" / "foo" / "promoter-manifest.yaml"
        registries.parent.mkdir(parents=True)
        registries.write_text(
            f"registries:\n- name: {self.staging}\n  src: true\n- name: {self.prod}\n"
        )
        self.images = folder / "registry.lab" / "images" / "foo" / "images.yaml"
        self.images.parent.mkdir(parents=True)

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=self.folder, env=GIT_ENV, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    def commit(self, digests: dict[str, str], message: str, *, raw: str | None = None) -> str:
        """Write images.yaml (image `bar`, digest -> tag) and commit it; returns the commit."""
        text = "- name: bar\n  dmap:\n" + "".join(
            f'    "{d}": ["{t}"]\n' for d, t in digests.items()
        )
        self.images.write_text(raw if raw is not None else text)
        self.git("add", "-A")
        self.git("commit", "--quiet", "-m", message)
        return self.git("rev-parse", "HEAD")


def insert(
    auditor: RunningAuditor, repo: ManifestRepository, digest: str, message_id: str
) -> dict[str, Any]:
    status, answer = auditor.pubsub(
        {"action": "INSERT", "digest": f"{repo.prod}/bar@{digest}"}, message_id
    )
    assert status == 200, answer
    entry: dict[str, Any] = answer["events"][0]
    return entry


def refreshes(auditor: RunningAuditor, outcome: str) -> float:
    return auditor.metrics()[("cip_audit_manifests_refreshes_total", (("outcome", outcome),))]


def test_a_commit_adding_an_image_verifies_it_after_refresh_and_an_invalid_commit_keeps_the_set(
    lab_registry: LabRegistry, tmp_path: Path
) -> None:
    repo = ManifestRepository(tmp_path / "k8s.io", lab_registry)
    first = repo.commit({PROMOTED: "1.0"}, "promote bar 1.0")
    flags = [
        f"--manifests-git={repo.folder}",
        "--manifests-branch=main",
        "--manifests-path=registry.lab",
        "--refresh=0",  # only POST /refresh: this test decides when
        f"--distribution-token={TOKEN}",
        "--pubsub-auth=none",
    ]
    with running_auditor(flags, tmp_path) as auditor:
        status, health = auditor.get("/healthz")
        assert status == 200
        assert health["manifests"]["source"] == "git"
        assert health["manifests"]["commit"] == first
        assert health["manifests"]["branch"] == "main"
        assert insert(auditor, repo, PROMOTED, "a")["verdict"] == "verified"
        assert insert(auditor, repo, ADDED, "b")["rule"] == "not-promoted"
        # Only with the token.
        assert auditor.post("/refresh", b"")[0] == 401
        added = repo.commit({PROMOTED: "1.0", ADDED: "1.1"}, "promote bar 1.1")
        status, answer = auditor.post("/refresh", b"", AUTH)
        assert (status, answer["outcome"], answer["commit"]) == (200, "loaded", added), answer
        entry = insert(auditor, repo, ADDED, "c")
        assert (entry["verdict"], entry["rule"]) == ("verified", "promoted")
        assert entry["manifest"].endswith("registry.lab/images/foo/images.yaml:4:5")
        assert added[:12] in entry["manifest"]  # the file of that commit
        status, answer = auditor.post("/refresh", b"", AUTH)
        assert (status, answer["outcome"], answer["commit"]) == (200, "unchanged", added)

        # An invalid commit: refused with its problems, the previous set judges on.
        broken = repo.commit(
            {}, "break it", raw='- name: bar\n  dmap:\n    "sha256:nothex": ["1.2"]\n'
        )
        status, answer = auditor.post("/refresh", b"", AUTH)
        assert status == 422, answer
        assert (answer["outcome"], answer["commit"], answer["fetched"]) == (
            "invalid",
            added,
            broken,
        )
        assert any("images.yaml:3:5" in p and "sha256:nothex" in p for p in answer["problems"]), (
            answer
        )
        assert insert(auditor, repo, ADDED, "d")["verdict"] == "verified"
        status, health = auditor.get("/healthz")
        assert health["manifests"]["commit"] == added
        assert health["manifests"]["last_refresh"]["outcome"] == "invalid"
        assert refreshes(auditor, "invalid") == 1
        assert refreshes(auditor, "loaded") == 2  # the first commit at start-up, then one
        assert refreshes(auditor, "unchanged") == 1

        # The branch moves back to valid manifests that no longer promote the first digest.
        fixed = repo.commit({ADDED: "1.1"}, "drop bar 1.0")
        assert auditor.post("/refresh", b"", AUTH)[1]["commit"] == fixed
        assert insert(auditor, repo, PROMOTED, "e")["rule"] == "not-promoted"
        lines = auditor.decision_lines()
        assert auditor.stop() == 0
    # Every decision's log line names the commit that judged it.
    commits = {line["event"]["id"]: line["manifests_commit"] for line in lines}
    assert commits == {"a": first, "b": first, "c": added, "d": added, "e": fixed}
    log = auditor.stderr.read_text()
    assert f"the manifests at commit {broken} have 1 error; still using {added}" in log


def test_the_branch_is_followed_every_refresh_from_the_remote_default_branch(
    lab_registry: LabRegistry, tmp_path: Path
) -> None:
    repo = ManifestRepository(tmp_path / "manifests", lab_registry)
    plain = repo.folder / "prod.yaml"
    plain.write_text(
        f"registries:\n- name: {repo.staging}\n  src: true\n- name: {repo.prod}\n"
        f'images:\n- name: bar\n  dmap:\n    "{PROMOTED}": ["1.0"]\n'
    )
    first = repo.commit({}, "a plain manifest too")
    flags = [f"--manifests-git={repo.folder}", "--manifests-path=prod.yaml", "--refresh=500ms", "--pubsub-auth=none"]  # fmt: skip
    with running_auditor(flags, tmp_path) as auditor:
        assert auditor.get("/healthz")[1]["manifests"]["commit"] == first
        assert insert(auditor, repo, ADDED, "a")["verdict"] == "rejected"
        plain.write_text(plain.read_text() + f'    "{ADDED}": ["1.1"]\n')
        second = repo.commit({}, "promote bar 1.1")
        deadline = time.monotonic() + 30
        while auditor.get("/healthz")[1]["manifests"]["commit"] != second:
            assert time.monotonic() < deadline, "the refresh did not pick up the new commit"
            time.sleep(0.1)
        assert insert(auditor, repo, ADDED, "b")["verdict"] == "verified"
        # Without --distribution-token, POST /refresh is off.
        assert auditor.post("/refresh", b"")[0] == 404
        current = auditor.metrics()[("cip_audit_manifests_current_timestamp_seconds", ())]
        assert time.time() - 30 < current <= time.time()


def test_a_repository_that_cannot_be_used_at_start_up_is_bad_input(
    lab_registry: LabRegistry, tmp_path: Path
) -> None:
    repo = ManifestRepository(tmp_path / "repo", lab_registry)
    repo.commit({"sha256:nothex": "1.0"}, "invalid from the start")
    base = ["audit", "serve", "--pubsub-auth=none", f"--port={free_port()}"]
    cases = [
        ([f"--manifests-git={tmp_path / 'absent'}"], "git fetch of"),
        ([f"--manifests-git={repo.folder}", "--manifests-branch=release"], "git fetch of"),
        ([f"--manifests-git={repo.folder}", "--manifests-path=elsewhere"], "--manifests-path=elsewhere is not in commit"),
        ([f"--manifests-git={repo.folder}", "--manifests-path=registry.lab"], "registry.lab/images/foo/images.yaml:3:5"),
        ([f"--manifests-git={repo.folder}", "--manifest=x.yaml"], "--manifests-git replaces --manifest"),
        (["--manifest=x.yaml", "--refresh=1m", "--manifests-branch=main"], "--manifests-branch, --refresh: only with --manifests-git"),
    ]  # fmt: skip
    for flags, words in cases:
        done = run_cip(*base, *flags)
        assert done.returncode == 2, (flags, done.stderr)
        assert words in done.stderr, (flags, done.stderr)
        assert "Traceback" not in done.stderr
