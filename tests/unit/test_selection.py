"""Diff and image selection: which digests a run works on, from changed lines (pure)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from cip.errors import PlanError
from cip.manifests import git_diff
from cip.plan.selection import select_changed, select_images
from cip.promote.pipeline import Selection, load_and_validate, select
from tests.unit.conftest import D1, D2, D3

IMAGES = (
    "- name: a\n"  # line 1
    "  dmap:\n"
    f'    "{D1}": ["1"]\n'  # line 3
    f"    {D2}:\n"  # line 4
    "    - '2'\n"  # line 5
    "- name: b\n"  # line 6
    "  dmap:\n"
    f'    "{D3}": ["3"]\n'  # line 8
)


def chosen(root: Path, changed: dict[str, set[int]]) -> list[tuple[str, str]]:
    validated = load_and_validate([], [str(root)])
    real = {os.path.realpath(path): lines for path, lines in changed.items()}
    return [
        (g.image, g.digest) for g in select_changed(validated.manifests, validated.groups, real)
    ]


def test_changed_tag_line_in_block_list_selects_its_digest(thin: Callable[..., Path]) -> None:
    root = thin("p", IMAGES)
    assert chosen(root, {str(root / "images/p/images.yaml"): {5}}) == [("a", D2)]
    assert chosen(root, {str(root / "images/p/images.yaml"): {3, 8}}) == [("a", D1), ("b", D3)]


def test_empty_change_selects_nothing(thin: Callable[..., Path]) -> None:
    root = thin("p", IMAGES)
    assert chosen(root, {}) == []
    assert chosen(root, {str(root / "images/p/images.yaml"): set()}) == []


def test_changed_promoter_manifest_selects_every_image_of_it(thin: Callable[..., Path]) -> None:
    root = thin("p", IMAGES)
    selected = chosen(root, {str(root / "manifests/p/promoter-manifest.yaml"): {4}})
    assert sorted(selected) == [("a", D1), ("a", D2), ("b", D3)]


def test_image_filter() -> None:
    assert select_images([], ["a"]) == []


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
    )


def test_diff_since_a_date_and_prow_refs(thin: Callable[..., Path]) -> None:
    root = thin("p", IMAGES)
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-qm", "one", "--date=2020-01-01T00:00:00")
    with open(root / "images/p/images.yaml", "a") as stream:
        stream.write(f'- name: c\n  dmap:\n    "{D1}": ["9"]\n')
    validated = load_and_validate([], [str(root)])
    env_before = dict(os.environ)
    assert [g.image for g in select(validated, Selection(diff_base="HEAD"))] == ["c"]
    # The window holds the whole history: its oldest commit is the base, as in kpromo.
    assert [g.image for g in select(validated, Selection(diff_since="2000-01-01"))] == ["c"]
    assert git_diff.prow_ref({"JOB_TYPE": "postsubmit"}) == "HEAD^"
    assert git_diff.prow_ref({"JOB_TYPE": "presubmit", "PULL_BASE_SHA": "abc"}) == "abc"
    with pytest.raises(PlanError, match="PULL_BASE_SHA is not set"):
        git_diff.prow_ref({"JOB_TYPE": "batch"})
    with pytest.raises(PlanError, match="needs JOB_TYPE"):
        git_diff.prow_ref({})
    assert dict(os.environ) == env_before
