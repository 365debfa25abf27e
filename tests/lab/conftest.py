"""Fixtures over `registry_lab`: fresh real registries and OCI layout folders per test.

A missing `docker-registry` binary is a failure when `CI` is set (scripts/test installs it), and
an explicit, reported skip on a developer machine without it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cip.registry.client import Registry
from cip.registry.connect import open_http_registry
from cip.registry.layout import open_layout
from tests.lab.registry_lab import LabRegistry, LabUnavailable, start_registry
from tests.lab.sigstore_lab import SigstoreLab, start_sigstore_lab


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.lab)


def _start(root: Path, config: dict[str, Any] | None = None) -> LabRegistry:
    try:
        return start_registry(root, config=config)
    except LabUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc} (CI is set: the lab is required)")
        pytest.skip(str(exc))


@pytest.fixture
def registry_factory(tmp_path: Path) -> Iterator[Callable[..., LabRegistry]]:
    """Start any number of registries (optionally with extra config); all stopped at the end."""
    started: list[LabRegistry] = []

    def start(config: dict[str, Any] | None = None) -> LabRegistry:
        lab = _start(tmp_path / f"registry-{len(started)}", config)
        started.append(lab)
        return lab

    yield start
    for lab in started:
        lab.stop()


@pytest.fixture
def lab_registry(registry_factory: Callable[..., LabRegistry]) -> LabRegistry:
    """One fresh registry on 127.0.0.1 with empty storage."""
    return registry_factory()


@dataclass
class Backend:
    """A Registry implementation to run a test against: a lab registry or a layout folder."""

    kind: str
    lab: LabRegistry | None
    layout_root: Path | None

    @asynccontextmanager
    async def open(self, **kwargs: Any) -> AsyncIterator[Registry]:
        if self.lab is not None:
            async with open_http_registry(self.lab.host, **kwargs) as client:
                yield client
        else:
            assert self.layout_root is not None
            layout = open_layout(self.layout_root)
            try:
                yield layout
            finally:
                await layout.aclose()


@pytest.fixture(params=["registry", "layout"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "registry":
        lab = _start(tmp_path / "registry")
        try:
            yield Backend("registry", lab, None)
        finally:
            lab.stop()
    else:
        yield Backend("layout", None, tmp_path / "layouts")


def _sigstore(folder: Path) -> Iterator[SigstoreLab]:
    try:
        lab = start_sigstore_lab(folder)
    except LabUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc} (CI is set: the keyless lab is required)")
        pytest.skip(str(exc))
    try:
        yield lab
    finally:
        lab.stop()


@pytest.fixture(scope="session")
def sigstore_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SigstoreLab]:
    """A local Fulcio and Rekor for the whole session (new keys at every start)."""
    yield from _sigstore(tmp_path_factory.mktemp("sigstore"))


@pytest.fixture(scope="session")
def other_sigstore_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SigstoreLab]:
    """A second, unrelated sigstore instance: its Fulcio and Rekor are trusted by nobody else."""
    yield from _sigstore(tmp_path_factory.mktemp("other-sigstore"))
