"""OCI layout folders are what other OCI tools read: skopeo inspects what cip wrote."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from cip.errors import RegistryError
from cip.oci import media
from cip.registry.layout import open_layout
from tests.lab import images


def _skopeo(*args: str) -> str:
    binary = shutil.which("skopeo")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("skopeo is not installed (CI is set: scripts/test installs it)")
        pytest.skip("skopeo is not installed (apt-get install skopeo)")
    done = subprocess.run([binary, *args], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_skopeo_reads_what_cip_wrote(tmp_path: Path) -> None:
    image = images.oci_image(301, annotations={"lab": "yes"})
    index = images.oci_index(302)
    layout = open_layout(tmp_path)

    async def body() -> None:
        await images.push(layout, "team/app", image, "v1")
        await images.push(layout, "team/app", index, "multi")
        await images.push(layout, "team/app", image, "v1-again")

    asyncio.run(body())
    target = f"oci:{tmp_path}/team/app"
    inspected = json.loads(_skopeo("inspect", f"{target}:v1"))
    assert inspected["Digest"] == image.digest
    assert inspected["Architecture"] == "amd64"
    assert _skopeo("inspect", "--raw", f"{target}:v1").encode() == image.manifest
    raw_index = _skopeo("inspect", "--raw", f"{target}:multi").encode()
    assert media.compute_digest(raw_index) == index.digest
    layout_index = json.loads((tmp_path / "team/app/index.json").read_text())
    assert json.loads((tmp_path / "team/app/oci-layout").read_text()) == {
        "imageLayoutVersion": "1.0.0"
    }
    tags = [
        d["annotations"]["org.opencontainers.image.ref.name"]
        for d in layout_index["manifests"]
        if "annotations" in d
    ]
    assert sorted(tags) == ["multi", "v1", "v1-again"]


def test_moving_a_tag_rewrites_its_index_entry(tmp_path: Path) -> None:
    first, second = images.oci_image(303), images.oci_image(304)
    layout = open_layout(tmp_path)

    async def body() -> None:
        await images.push(layout, "app", first, "latest")
        await images.push(layout, "app", second, "latest")
        info = await layout.head_manifest("app", "latest")
        assert info is not None and info.digest == second.digest
        assert (await layout.list_tags("app")).tags == ("latest",)
        # the old manifest is still addressable by digest
        assert (await layout.get_manifest("app", first.digest)).data == first.manifest

    asyncio.run(body())
    assert json.loads(_skopeo("inspect", f"oci:{tmp_path}/app:latest"))["Digest"] == second.digest


def test_cip_reads_a_layout_skopeo_wrote(tmp_path: Path) -> None:
    source = open_layout(tmp_path / "src")
    image = images.oci_image(305)
    asyncio.run(images.push(source, "app", image, "v1"))
    (tmp_path / "dst").mkdir()
    _skopeo(
        "copy",
        "--quiet",
        "--preserve-digests",
        f"oci:{tmp_path}/src/app:v1",
        f"oci:{tmp_path}/dst/app:v2",
    )

    async def body() -> None:
        copied = open_layout(tmp_path / "dst")
        assert (await copied.list_tags("app")).tags == ("v2",)
        got = await copied.get_manifest("app", "v2")
        assert got.digest == image.digest
        for blob in got.parse().blobs():
            assert await copied.blob_exists("app", blob.digest)
        assert [name async for name in copied.catalog()] == ["app"]

    asyncio.run(body())


def test_oversized_manifest_in_a_layout_is_refused(tmp_path: Path) -> None:
    layout = open_layout(tmp_path)
    asyncio.run(images.push(layout, "app", images.oci_image(306), "v1"))
    huge = json.dumps({"schemaVersion": 2, "pad": "x" * (5 * 1024 * 1024)}).encode()
    digest = media.compute_digest(huge)
    (tmp_path / "app/blobs/sha256" / digest.removeprefix("sha256:")).write_bytes(huge)

    async def body() -> None:
        with pytest.raises(RegistryError, match="4194304"):
            await layout.get_manifest("app", digest)

    asyncio.run(body())
