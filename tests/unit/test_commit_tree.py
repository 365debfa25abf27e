"""Manifests read from a git commit: the same values and diagnostics as from a checkout."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from cip.manifests.git_tree import read_commit
from cip.manifests.load import load_all
from cip.manifests.tree import load_commit
from tests.unit.conftest import D1, D2, REGISTRIES, write

IMAGES = f"""
- name: app
  dmap:
    "{D1}": ["1.0"]
"""


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def commit_all(root: Path, message: str) -> str:
    git(root, "add", "-A")
    git(root, "commit", "-qm", message)
    return git(root, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "repo"
    write(root / "k8s" / "manifests" / "a" / "promoter-manifest.yaml", REGISTRIES)
    write(root / "k8s" / "images" / "a" / "images.yaml", IMAGES)
    write(root / "k8s" / "manifests" / "OWNERS", "approvers: []\n")
    git(root, "init", "-q")
    commit_all(root, "first")
    monkeypatch.chdir(root)
    return root


def load_at(root: Path, commit: str, thin: list[str], plain: list[str] = ()) -> object:
    tree = read_commit(str(root), commit, [*thin, *plain], plain=set(plain))
    return load_commit(list(plain), thin, tree)


def test_a_commit_loads_like_the_checkout_of_it(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    from_tree = load_at(repo, head, ["k8s"])
    from_disk = load_all([], ["k8s"])
    assert from_tree == from_disk
    [manifest] = from_disk.manifests
    assert manifest.images_file == os.path.join("k8s", "images", "a", "images.yaml")


def test_the_commit_is_read_not_the_working_tree(repo: Path) -> None:
    first = git(repo, "rev-parse", "HEAD")
    images = repo / "k8s" / "images" / "a" / "images.yaml"
    images.write_text(images.read_text() + f'    "{D2}": ["2.0"]\n')
    second = commit_all(repo, "second")
    images.write_text("not: [valid\n")  # the working tree is broken; the commits are not
    old = load_at(repo, first, ["k8s"])
    new = load_at(repo, second, ["k8s"])
    assert list(old.manifests[0].images[0].dmap) == [D1]
    assert list(new.manifests[0].images[0].dmap) == [D1, D2]
    assert old.diagnostics == new.diagnostics == []
    assert git(repo, "status", "--porcelain") == "M k8s/images/a/images.yaml"  # untouched


def test_problems_in_a_commit_name_the_file_and_line_as_written(repo: Path) -> None:
    images = repo / "k8s" / "images" / "a" / "images.yaml"
    images.write_text(IMAGES.lstrip() + "- name: bad\n  dmap:\n    sha256:nope: []\n")
    write(repo / "k8s" / "manifests" / "b" / "promoter-manifest.yaml", REGISTRIES)
    write(repo / "k8s" / "manifests" / "a" / "deeper" / "promoter-manifest.yaml", REGISTRIES)
    head = commit_all(repo, "broken")
    loaded = load_at(repo, head, ["k8s"])
    rendered = [d.render() for d in loaded.diagnostics]
    assert rendered == [d.render() for d in load_all([], ["k8s"]).diagnostics]
    assert "k8s/images/a/images.yaml:6:5: error: invalid digest: sha256:nope (image=bad)" in (
        rendered
    )
    assert any("images file is missing: k8s/images/b/images.yaml" in r for r in rendered)
    assert any("nested manifest" in r for r in rendered)


def test_links_are_followed_inside_the_commit(repo: Path) -> None:
    shared = repo / "shared" / "registries.yaml"
    write(shared, REGISTRIES)
    link = repo / "k8s" / "manifests" / "a" / "promoter-manifest.yaml"
    link.unlink()
    link.symlink_to(os.path.relpath(shared, link.parent))
    broken = repo / "k8s" / "images" / "c" / "images.yaml"
    write(repo / "k8s" / "manifests" / "c" / "promoter-manifest.yaml", REGISTRIES)
    broken.parent.mkdir(parents=True)
    broken.symlink_to("../../nowhere.yaml")
    head = commit_all(repo, "links")
    loaded = load_at(repo, head, ["k8s"])
    assert [len(m.images) for m in loaded.manifests] == [1, 0]  # a: through the link
    [problem] = loaded.diagnostics
    assert problem.file == "k8s/images/c/images.yaml"
    assert problem.message.startswith("symlink to ../../nowhere.yaml: no such file in commit")


def test_plain_manifests_and_missing_folders(repo: Path) -> None:
    write(repo / "plain.yaml", REGISTRIES + "images:\n" + IMAGES)
    head = commit_all(repo, "plain")
    loaded = load_at(repo, head, ["k8s", "gone"], ["plain.yaml"])
    assert [m.manifest_file for m in loaded.manifests] == [
        "plain.yaml",
        "k8s/manifests/a/promoter-manifest.yaml",
    ]
    [problem] = loaded.diagnostics
    assert (problem.file, problem.message) == (
        "gone",
        f"thin manifest directory not found in commit {head[:12]}",
    )


def test_the_base_side_reads_only_what_is_wanted_and_says_nothing_of_the_rest(
    repo: Path,
) -> None:
    head = git(repo, "rev-parse", "HEAD")
    tree = read_commit(str(repo), head, ["k8s", "new"])
    loaded = load_commit(
        [], ["k8s", "new"], tree, wanted=lambda path: path.endswith("b/images.yaml")
    )
    assert loaded.manifests == [] and loaded.diagnostics == []
    loaded = load_commit([], ["k8s"], tree, wanted=lambda path: "/a/" in path)
    assert len(loaded.manifests) == 1
