"""Helpers that write manifests into a temp folder, as a user's checkout would hold them."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64

CORPUS_ENV = "CIP_CORPUS"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


REGISTRIES = """
registries:
- name: gcr.io/staging
  src: true
- name: us.gcr.io/prod
- name: eu.gcr.io/prod
"""


@pytest.fixture
def thin(tmp_path: Path) -> Callable[..., Path]:
    """thin(project, images_yaml, registries_yaml=REGISTRIES) -> the thin directory."""

    def make(project: str, images: str, registries: str = REGISTRIES) -> Path:
        write(tmp_path / "manifests" / project / "promoter-manifest.yaml", registries)
        write(tmp_path / "images" / project / "images.yaml", images)
        return tmp_path

    return make


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The real registry.k8s.io manifests, beside the checkout (never copied into the repo)."""
    default = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "k8s-registry"
    path = Path(os.environ.get(CORPUS_ENV, default))
    if not (path / "manifests").is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"the Kubernetes manifest corpus is missing at {path} (CI must have it)")
        pytest.skip(f"corpus not found at {path}; set {CORPUS_ENV}")
    return path
