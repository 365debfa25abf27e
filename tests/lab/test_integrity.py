"""Bytes that do not match their digest, schema1 and oversized manifests are refused.

The registry is real; a tampering proxy (tests/lab/tamper.py) alters its answers in flight.
"""

from __future__ import annotations

import asyncio
import hashlib
import json

import pytest

from cip.errors import DigestMismatchError, RegistryError
from cip.oci import media
from cip.oci.media import UnsupportedManifestError
from cip.registry.connect import open_http_registry
from cip.registry.layout import open_layout
from tests.lab import images
from tests.lab.registry_lab import LabRegistry
from tests.lab.tamper import Answer, flip_last_byte, tampering_proxy


def _push(lab: LabRegistry, image: images.Image, tag: str) -> None:
    async def body() -> None:
        async with open_http_registry(lab.host) as reg:
            await images.push(reg, "lab/app", image, tag)

    asyncio.run(body())


def _tamper_manifests(answer: Answer) -> Answer:
    if "/manifests/" in answer.request_path and answer.status == 200:
        answer.body = flip_last_byte(answer.body)  # Docker-Content-Digest left as it was
    return answer


def test_manifest_bytes_that_do_not_match_are_refused(lab_registry: LabRegistry) -> None:
    image = images.oci_image(101)
    _push(lab_registry, image, "v1")

    async def body(proxy: str) -> None:
        async with open_http_registry(proxy) as reg:
            with pytest.raises(DigestMismatchError) as by_digest:
                await reg.get_manifest("lab/app", image.digest)
            assert by_digest.value.digest == image.digest
            # By tag: the bytes are checked against the registry's Docker-Content-Digest.
            with pytest.raises(DigestMismatchError):
                await reg.get_manifest("lab/app", "v1")

    with tampering_proxy(lab_registry.host, _tamper_manifests) as proxy:
        asyncio.run(body(proxy))


def test_blob_stream_that_does_not_match_is_refused(lab_registry: LabRegistry) -> None:
    image = images.oci_image(102, layer_size=300_000)
    _push(lab_registry, image, "v1")
    layer = image.blobs[-1]

    def tamper(answer: Answer) -> Answer:
        if "/blobs/" in answer.request_path and answer.request_method == "GET":
            answer.body = flip_last_byte(answer.body)
        return answer

    async def body(proxy: str) -> None:
        async with open_http_registry(proxy) as reg:
            with pytest.raises(DigestMismatchError):
                async for _ in reg.stream_blob("lab/app", layer.digest):
                    pass

    with tampering_proxy(lab_registry.host, tamper) as proxy:
        asyncio.run(body(proxy))


def test_schema1_served_by_a_registry_is_refused(lab_registry: LabRegistry) -> None:
    _push(lab_registry, images.oci_image(103), "v1")
    old = images.schema1_manifest()

    def serve_schema1(answer: Answer) -> Answer:
        if "/manifests/" in answer.request_path:
            digest = media.compute_digest(old)
            answer.headers = {"Content-Type": media.DOCKER_SCHEMA1_SIGNED}
            answer.headers["Docker-Content-Digest"] = digest
            answer.body = old
        return answer

    async def body(proxy: str) -> None:
        async with open_http_registry(proxy) as reg:
            with pytest.raises(UnsupportedManifestError, match="schema1"):
                await reg.get_manifest("lab/app", "v1")

    with tampering_proxy(lab_registry.host, serve_schema1) as proxy:
        asyncio.run(body(proxy))


def test_oversized_manifest_is_refused(lab_registry: LabRegistry) -> None:
    _push(lab_registry, images.oci_image(104), "v1")
    huge = json.dumps({"schemaVersion": 2, "pad": "x" * (5 * 1024 * 1024)}).encode()

    def oversize(answer: Answer) -> Answer:
        if "/manifests/" in answer.request_path:
            answer.headers.pop("Docker-Content-Digest", None)
            answer.body = huge
        return answer

    async def body(proxy: str) -> None:
        async with open_http_registry(proxy) as reg:
            with pytest.raises(RegistryError, match="exceeds the 4194304 byte limit"):
                await reg.get_manifest("lab/app", "v1")

    with tampering_proxy(lab_registry.host, oversize) as proxy:
        asyncio.run(body(proxy))


def test_layout_content_that_does_not_match_is_refused(tmp_path: object) -> None:
    from pathlib import Path

    root = Path(str(tmp_path)) / "layouts"
    image = images.oci_image(105)
    layout = open_layout(root)

    async def body() -> None:
        await images.push(layout, "lab/app", image, "v1")
        manifest_file = root / "lab/app/blobs/sha256" / image.digest.removeprefix("sha256:")
        manifest_file.write_bytes(flip_last_byte(manifest_file.read_bytes()))
        with pytest.raises(DigestMismatchError):
            await layout.get_manifest("lab/app", "v1")
        layer = image.blobs[-1]
        layer_file = root / "lab/app/blobs/sha256" / layer.digest.removeprefix("sha256:")
        layer_file.write_bytes(flip_last_byte(layer_file.read_bytes()))
        with pytest.raises(DigestMismatchError):
            async for _ in layout.stream_blob("lab/app", layer.digest):
                pass
        # A schema1 manifest someone put into a layout by hand is refused the same way.
        old = images.schema1_manifest()
        old_digest = hashlib.sha256(old).hexdigest()
        (root / "lab/app/blobs/sha256" / old_digest).write_bytes(old)
        with pytest.raises(UnsupportedManifestError, match="schema1"):
            await layout.get_manifest("lab/app", f"sha256:{old_digest}")

    asyncio.run(body())
