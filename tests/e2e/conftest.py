"""The CLI against real lab registries: fixtures shared with tests/lab, plus a `cip` runner."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from cip.registry.connect import open_http_registry
from tests.cli import run_cip
from tests.lab.conftest import lab_registry, other_sigstore_lab, registry_factory, sigstore_lab
from tests.lab.images import Image, push
from tests.lab.registry_lab import LabRegistry

__all__ = ["lab_registry", "other_sigstore_lab", "registry_factory", "run_cip", "sigstore_lab"]

WRITE_METHODS = {"PUT", "POST", "PATCH", "DELETE"}


def push_images(lab: LabRegistry, items: Sequence[tuple[str, Image, str | None]]) -> None:
    """Push (repository, image, tag) triples through cip's own client."""

    async def go() -> None:
        async with open_http_registry(lab.host) as client:
            for repository, image, tag in items:
                await push(client, repository, image, tag)

    asyncio.run(go())


def writes(lab: LabRegistry, mark: int) -> list[str]:
    return [f"{e.method} {e.path}" for e in lab.requests_since(mark) if e.method in WRITE_METHODS]
