"""Every Registry operation, against a real registry and against an OCI layout folder."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Callable

import pytest

from cip.errors import DigestMismatchError, RegistryError
from cip.oci import media
from cip.oci.media import UnsupportedManifestError
from cip.registry.client import Registry
from tests.lab import images
from tests.lab.conftest import Backend

ALL_KINDS: dict[str, Callable[[], images.Image]] = {
    "oci-image": lambda: images.oci_image(1),
    "docker-image": lambda: images.docker_image(2),
    "oci-index": lambda: images.oci_index(3),
    "docker-manifest-list": lambda: images.docker_manifest_list(4),
    "helm-chart": lambda: images.artifact(
        5, "application/vnd.cncf.helm.config.v1+json", payload_type="application/tar+gzip"
    ),
}


@pytest.mark.parametrize("kind", sorted(ALL_KINDS))
def test_manifest_round_trip_keeps_bytes_type_and_digest(backend: Backend, kind: str) -> None:
    image = ALL_KINDS[kind]()

    async def body() -> None:
        async with backend.open() as reg:
            await reg.ping()
            assert await images.push(reg, "lab/app", image, "v1") == image.digest
            for ref in ("v1", image.digest):
                info = await reg.head_manifest("lab/app", ref)
                assert info is not None
                assert (info.digest, info.media_type, info.size) == (
                    image.digest,
                    image.media_type,
                    image.size,
                )
                got = await reg.get_manifest("lab/app", ref)
                assert got.data == image.manifest  # byte for byte, never converted
                assert (got.digest, got.media_type) == (image.digest, image.media_type)
            tags = await reg.list_tags("lab/app")
            assert tags.tags == ("v1",)
            parsed = (await reg.get_manifest("lab/app", "v1")).parse()
            assert {c.digest for c in parsed.children} == {c.digest for c in image.children}

    asyncio.run(body())


def test_absent_things_answer_none_and_false(backend: Backend) -> None:
    missing = media.compute_digest(b"nothing")

    async def body() -> None:
        async with backend.open() as reg:
            await images.push(reg, "lab/app", images.oci_image(7), "v1")
            assert await reg.head_manifest("lab/app", "nope") is None
            assert await reg.head_manifest("lab/app", missing) is None
            assert await reg.blob_exists("lab/app", missing) is False
            with pytest.raises(RegistryError) as raised:
                await reg.get_manifest("lab/app", "nope")
            assert raised.value.status == 404
            assert raised.value.oci_code == "MANIFEST_UNKNOWN"

    asyncio.run(body())


def test_blobs_upload_monolithic_and_streamed_then_stream_back(backend: Backend) -> None:
    small = images.bytes_blob(b"small blob " * 100)
    large = images.seeded_blob(11, 9 * 1024 * 1024 + 17)  # streamed: generated, not held
    assert large.data is None

    async def body() -> None:
        async with backend.open() as reg:
            await reg.upload_blob("lab/blobs", small.digest, small.data or b"")
            await reg.upload_blob("lab/blobs", large.digest, large.aiter(), size=large.size)
            for blob in (small, large):
                assert await reg.blob_exists("lab/blobs", blob.digest)
                received, hasher = 0, hashlib.sha256()
                async for chunk in reg.stream_blob("lab/blobs", blob.digest, chunk_size=65536):
                    assert len(chunk) <= 65536
                    received += len(chunk)
                    hasher.update(chunk)
                assert (received, f"sha256:{hasher.hexdigest()}") == (blob.size, blob.digest)
            # An upload whose bytes do not match the announced digest is refused, not stored.
            wrong = media.compute_digest(b"other")
            with pytest.raises(DigestMismatchError):
                await reg.upload_blob("lab/blobs", wrong, b"not other")
            assert not await reg.blob_exists("lab/blobs", wrong)

    asyncio.run(body())


def test_streamed_upload_of_unknown_size(backend: Backend) -> None:
    blob = images.seeded_blob(12, 3 * 1024 * 1024 + 5)

    async def chunks() -> AsyncIterator[bytes]:
        for chunk in blob.chunks(100_000):
            yield chunk

    async def body() -> None:
        async with backend.open() as reg:
            await reg.upload_blob("lab/s", blob.digest, chunks())
            assert await reg.blob_exists("lab/s", blob.digest)

    asyncio.run(body())


def test_mount_across_repositories_and_fallback_to_upload(backend: Backend) -> None:
    blob = images.bytes_blob(b"shared layer" * 1000)
    other = images.bytes_blob(b"only uploaded" * 1000)

    async def body() -> None:
        async with backend.open() as reg:
            await reg.upload_blob("lab/src", blob.digest, blob.data or b"")
            mounted = await reg.mount_blob("lab/dst", blob.digest, "lab/src")
            assert mounted.mounted and mounted.session is None
            assert await reg.blob_exists("lab/dst", blob.digest)
            # Not in the source: the answer is an upload session to continue with.
            fallback = await reg.mount_blob("lab/dst", other.digest, "lab/src")
            assert not fallback.mounted and fallback.session is not None
            await reg.upload_blob(
                "lab/dst", other.digest, other.data or b"", session=fallback.session
            )
            assert await reg.blob_exists("lab/dst", other.digest)
            assert not await reg.blob_exists("lab/src", other.digest)

    mark = backend.lab.mark() if backend.lab else 0
    asyncio.run(body())
    if backend.lab:
        posts = [e for e in backend.lab.requests_since(mark) if e.method == "POST"]
        # one upload, the 201 mount, the 202 mount whose session was continued: no extra POST
        assert [e.status for e in posts] == [202, 201, 202]


def test_manifest_put_checks_before_sending(backend: Backend) -> None:
    image = images.oci_image(21)
    other = images.oci_image(22)
    huge = json.dumps({"schemaVersion": 2, "pad": "x" * (4 * 1024 * 1024)}).encode()

    async def body(reg: Registry) -> None:
        for blob in image.blobs:
            await images.push_blob(reg, "lab/app", blob)
        with pytest.raises(DigestMismatchError):
            await reg.put_manifest("lab/app", other.digest, image.manifest, image.media_type)
        with pytest.raises(UnsupportedManifestError, match="schema1"):
            await reg.put_manifest(
                "lab/app", "old", images.schema1_manifest(), media.DOCKER_SCHEMA1_SIGNED
            )
        with pytest.raises(RegistryError, match="exceeds the 4194304 byte limit"):
            await reg.put_manifest("lab/app", "huge", huge, media.OCI_MANIFEST)

    async def run() -> None:
        async with backend.open() as reg:
            for blob in image.blobs:
                await images.push_blob(reg, "lab/app", blob)
            mark = backend.lab.mark() if backend.lab else 0
            await body(reg)
            if backend.lab:
                methods = backend.lab.count_since(mark)
                assert methods.get("PUT", 0) == 0  # refused locally, nothing reached the registry

    asyncio.run(run())


def test_index_put_needs_children_first(backend: Backend) -> None:
    index = images.oci_index(31)

    async def body() -> None:
        async with backend.open() as reg:
            with pytest.raises(RegistryError) as raised:
                await reg.put_manifest("lab/app", "v1", index.manifest, index.media_type)
            assert raised.value.status == 400
            assert await reg.head_manifest("lab/app", "v1") is None

    asyncio.run(body())


def test_catalog_lists_every_repository(backend: Backend) -> None:
    names = sorted(f"lab/team{i % 3}/img{i}" for i in range(7))
    image = images.oci_image(41)

    async def body() -> None:
        async with backend.open() as reg:
            for name in names:
                await images.push(reg, name, image, "v1")
            assert sorted([name async for name in reg.catalog()]) == names

    asyncio.run(body())


def test_tags_of_a_repository_whose_manifests_were_deleted(backend: Backend) -> None:
    image = images.oci_image(51)

    async def body() -> None:
        async with backend.open() as reg:
            await images.push(reg, "lab/gone", image, "v1")
            await images.push(reg, "lab/gone", image, "v2")
            assert sorted((await reg.list_tags("lab/gone")).tags) == ["v1", "v2"]
            await reg.delete_manifest("lab/gone", image.digest)  # type: ignore[attr-defined]
            # Distribution 2.8.2 answers {"tags": null} here.
            assert (await reg.list_tags("lab/gone")).tags == ()

    asyncio.run(body())


def test_referrers_of_an_image(backend: Backend) -> None:
    subject = images.oci_image(61)
    sbom = images.artifact(62, "application/spdx+json", subject=subject)
    sig = images.artifact(63, "application/vnd.dev.cosign.artifact.sig.v1+json", subject=subject)
    unrelated = images.artifact(64, "application/spdx+json")

    async def body() -> None:
        async with backend.open() as reg:
            await images.push(reg, "lab/app", subject, "v1")
            assert await reg.referrers("lab/app", subject.digest) == []
            for artifact in (sbom, sig, unrelated):
                await images.push(reg, "lab/app", artifact)
            # Clients keep the referrers tag where the API is missing (distribution-spec 1.1).
            tag = media.referrers_tag(subject.digest)
            await images.push(reg, "lab/app", images.referrers_index([sbom, sig]), tag)
            found = await reg.referrers("lab/app", subject.digest)
            assert {d.digest for d in found} == {sbom.digest, sig.digest}
            assert {d.artifact_type for d in found} == {
                "application/spdx+json",
                "application/vnd.dev.cosign.artifact.sig.v1+json",
            }
            only = await reg.referrers(
                "lab/app", subject.digest, artifact_type="application/spdx+json"
            )
            assert [d.digest for d in only] == [sbom.digest]

    asyncio.run(body())


def test_foreign_layers_are_reported_not_listed_for_copy() -> None:
    foreign = {
        "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "digest": media.compute_digest(b"windows base"),
        "size": 12,
        "urls": ["https://mcr.microsoft.com/blob"],
    }
    image = images.docker_image(71)
    body = json.loads(image.manifest)
    body["layers"].insert(0, foreign)
    parsed = media.parse_manifest(json.dumps(body).encode(), media.DOCKER_MANIFEST)
    assert [d.digest for d in parsed.foreign_layers] == [foreign["digest"]]
    assert foreign["digest"] not in {d.digest for d in parsed.blobs()}
    assert foreign["digest"] in {d.digest for d in parsed.blobs(include_foreign=True)}
