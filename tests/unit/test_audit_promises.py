"""What the auditor takes the manifests to promise, per production repository."""

from __future__ import annotations

from pathlib import Path

from cip.audit.promises import Promises
from cip.promote.pipeline import load_and_validate

A, B, C = ("sha256:" + c * 64 for c in "abc")


def write(path: Path, source: str, destinations: list[str], images: str) -> str:
    registries = "".join(f"- name: {d}\n" for d in destinations)
    path.write_text(f"registries:\n- name: {source}\n  src: true\n{registries}images:\n{images}")
    return str(path)


def test_repositories_several_manifests_promote_to_hold_all_their_digests(tmp_path: Path) -> None:
    one = write(
        tmp_path / "one.yaml",
        "gcr.io/staging-one",
        ["us.gcr.io/prod", "eu.gcr.io/prod"],
        f'- name: etcd\n  dmap:\n    "{A}": ["3.4.7"]\n',
    )
    two = write(
        tmp_path / "two.yaml",
        "gcr.io/staging-two",
        ["us.gcr.io/prod"],
        f'- name: etcd\n  dmap:\n    "{B}": ["3.4.7-2"]\n- name: other\n  dmap:\n    "{C}": []\n',
    )
    promises = Promises.from_edges(load_and_validate([one, two], []).groups)
    us = promises.repository("us.gcr.io", "prod/etcd")
    eu = promises.repository("eu.gcr.io", "prod/etcd")
    assert us is not None and eu is not None
    assert set(us.digests) == {A, B}
    assert us.tags == {"3.4.7": A, "3.4.7-2": B}
    assert str(us.digests[B].source) == "gcr.io/staging-two"  # where a parent can be read
    assert set(eu.digests) == {A}  # the second manifest does not promote to eu.gcr.io
    # A digest listed for the destination under another name: a child arriving elsewhere.
    found = promises.listed_for("us.gcr.io", "prod/etcd", C)
    assert found is not None and found.image == "other"
    assert promises.listed_for("eu.gcr.io", "prod/etcd", C) is None
    assert promises.listed_for("us.gcr.io", "elsewhere/etcd", C) is None
    assert [str(d) for d in promises.destinations["us.gcr.io"]] == ["us.gcr.io/prod"]
