"""SIGKILL during a promotion never leaves a tag on incomplete content; a rerun converges."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from cip.errors import RegistryError
from cip.registry.client import Registry
from cip.registry.connect import open_http_registry
from tests.e2e.conftest import push_images, run_cip, writes
from tests.e2e.test_dry_run import manifest
from tests.lab.images import Image, docker_manifest_list, oci_image, oci_index
from tests.lab.registry_lab import LabRegistry

KILLS = 10


async def incomplete_tags(client: Registry) -> list[str]:
    """Every tag whose manifest, children or blobs are not all in the repository."""
    problems: list[str] = []

    async def complete(repository: str, reference: str) -> bool:
        manifest = await client.get_manifest(repository, reference)
        parsed = manifest.parse()
        for child in parsed.children:
            if await client.head_manifest(repository, child.digest) is None:
                return False
            if not await complete(repository, child.digest):
                return False
        for blob in parsed.blobs():
            if not await client.blob_exists(repository, blob.digest):
                return False
        return True

    async for repository in client.catalog():
        try:
            tags = (await client.list_tags(repository)).tags
        except RegistryError as error:
            # Distribution lists a repository once a blob is in it; tags/list is 404 until
            # its first manifest.
            assert error.status == 404
            continue
        for tag in tags:
            if not await complete(repository, tag):
                problems.append(f"{repository}:{tag}")
    return problems


def check(lab: LabRegistry) -> list[str]:
    async def go() -> list[str]:
        async with open_http_registry(lab.host) as client:
            return await incomplete_tags(client)

    return asyncio.run(go())


def test_killed_promotions_never_expose_incomplete_tags_and_rerun_converges(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging, mirror_a, mirror_b = registry_factory(), registry_factory(), registry_factory()
    catalog: dict[str, Image] = {}
    for i in range(24):
        if i % 6 == 0:
            catalog[f"multi{i}"] = oci_index(300 + i)
        elif i % 6 == 1:
            catalog[f"list{i}"] = docker_manifest_list(300 + i)
        else:
            catalog[f"img{i}"] = oci_image(300 + i, layers=3, layer_size=1_500_000)
    push_images(staging, [(n, image, "src") for n, image in catalog.items()])
    images = "".join(
        f'- name: {n}\n  dmap:\n    "{image.digest}": ["1.0", "1", "latest"]\n'
        for n, image in catalog.items()
    )
    path = manifest(tmp_path / "m.yaml", staging.host, [mirror_a.host, mirror_b.host], images)
    chance = random.Random(1734)
    killed = 0
    mirrors = (mirror_a, mirror_b)
    for attempt in range(KILLS):
        marks = {m.host: m.mark() for m in mirrors}
        process = subprocess.Popen(
            [sys.executable, "-m", "cip.cli", "run", "--manifest", str(path), "--confirm"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Killed after a number of writes, not after a time, so that each run is cut short
        # however fast the machine is; every third one early, while it plans or starts to copy.
        target = 0 if attempt % 3 == 0 else chance.randint(1, 15)
        if attempt % 3 == 0:
            time.sleep(chance.uniform(0.1, 1.0))
        while process.poll() is None:
            if sum(len(writes(m, marks[m.host])) for m in mirrors) >= target:
                os.kill(process.pid, signal.SIGKILL)
                killed += 1
                break
            time.sleep(0.05)
        process.wait()
        for mirror in (mirror_a, mirror_b):
            assert check(mirror) == [], f"incomplete tags in {mirror.host}"
    assert killed >= KILLS // 2, "the promotion finished too fast to be interrupted"

    final = run_cip("run", "--manifest", str(path), "--confirm")
    assert final.returncode == 0, final.stdout + final.stderr
    marks = {m.host: m.mark() for m in (mirror_a, mirror_b)}
    again = run_cip("run", "--manifest", str(path), "--confirm")
    assert again.returncode == 0
    assert f"present {len(catalog) * 3 * 2}" in again.stdout
    for mirror in (mirror_a, mirror_b):
        assert writes(mirror, marks[mirror.host]) == []
        assert check(mirror) == []
