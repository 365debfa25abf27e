"""Behaviour specific to the HTTP client: paging, plain-HTTP fallback, request economy."""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter

import pytest

from cip.errors import RegistryError
from cip.registry.connect import create_http_registry, open_http_registry
from cip.transport.retry import RetryPolicy
from cip.transport.settings import NetworkOptions
from tests.lab import images
from tests.lab.registry_lab import LabRegistry


def test_catalog_beyond_100_repositories_follows_link(lab_registry: LabRegistry) -> None:
    names = sorted(f"lab/r{i:03d}" for i in range(130))
    image = images.oci_image(201)

    async def push_all() -> None:
        async with open_http_registry(lab_registry.host) as reg:
            for blob in image.blobs:  # once, then mounted into every repository
                await images.push_blob(reg, names[0], blob)

            async def one(name: str) -> None:
                for blob in image.blobs:
                    if name != names[0]:
                        assert (await reg.mount_blob(name, blob.digest, names[0])).mounted
                await reg.put_manifest(name, "v1", image.manifest, image.media_type)

            await asyncio.gather(*(one(n) for n in names))

    async def listing(page_size: int | None) -> list[str]:
        async with open_http_registry(lab_registry.host, catalog_page_size=page_size) as reg:
            return [name async for name in reg.catalog()]

    asyncio.run(push_all())
    for page_size, pages in ((None, 2), (1000, 1), (50, 3)):
        mark = lab_registry.mark()
        assert asyncio.run(listing(page_size)) == names  # 2.8.2's default page is 100
        catalog = [e for e in lab_registry.requests_since(mark) if "_catalog" in e.path]
        assert len(catalog) == pages


def test_loopback_falls_back_to_plain_http_and_remembers(lab_registry: LabRegistry) -> None:
    image = images.oci_image(202)

    async def body() -> None:
        async with open_http_registry(lab_registry.host) as reg:
            await images.push(reg, "lab/app", image, "v1")
            assert await reg.base_url() == f"http://{lab_registry.host}"
            mark = lab_registry.mark()
            for _ in range(5):
                assert await reg.head_manifest("lab/app", "v1") is not None
            # One request per HEAD: no re-probing, no extra round trips.
            assert lab_registry.count_since(mark) == {"HEAD": 5}
            # The HTTPS try that found plain HTTP chose the scheme; it is no failed request.
            unanswered = [key for key in reg.counter.counts if key[2] == 0]
            assert unanswered == []

    asyncio.run(body())


def test_non_loopback_hosts_never_use_plain_http() -> None:
    async def body() -> None:
        # 192.0.2.0/24 is TEST-NET-1: nothing answers; what matters is the scheme tried.
        patience = RetryPolicy(budget_seconds=2, base_delay=0.05, max_delay=0.2)
        reg = create_http_registry("192.0.2.1:5000", NetworkOptions(), timeout=0.5, retry=patience)
        try:
            assert await reg.base_url() == "https://192.0.2.1:5000"
            with pytest.raises(RegistryError) as raised:
                await reg.ping()
            assert raised.value.retryable
            assert all(host.startswith("192.0.2.1") for host, _, _ in reg.counter.counts)
        finally:
            await reg.aclose()

    asyncio.run(body())


def test_get_by_digest_costs_one_request(lab_registry: LabRegistry) -> None:
    index = images.docker_manifest_list(203)

    async def body() -> None:
        async with open_http_registry(lab_registry.host) as reg:
            await images.push(reg, "lab/app", index, "v1")
            mark = lab_registry.mark()
            got = await reg.get_manifest("lab/app", index.digest)
            assert got.data == index.manifest  # not converted to one platform or schema1
            assert lab_registry.count_since(mark) == {"GET": 1}

    asyncio.run(body())


def test_a_registry_without_the_referrers_api_is_asked_once(lab_registry: LabRegistry) -> None:
    """Distribution 2.8 has no referrers API: digests asked about at once wait for the first
    answer instead of each sending its own request."""
    digests = [images.oci_image(230 + i).digest for i in range(12)]

    async def body() -> None:
        async with open_http_registry(lab_registry.host) as reg:
            await reg.ping()
            mark = lab_registry.mark()
            found = await asyncio.gather(
                *(reg.subject_referrers("lab/app", digest) for digest in digests)
            )
            assert found == [None] * len(digests)
            asked = [e.path for e in lab_registry.requests_since(mark)]
            assert len([p for p in asked if "/referrers/" in p]) == 1, asked

    asyncio.run(body())


def test_streaming_a_64_mib_blob(lab_registry: LabRegistry) -> None:
    blob = images.seeded_blob(204, 64 * 1024 * 1024)

    async def body() -> None:
        async with open_http_registry(lab_registry.host) as reg:
            await reg.upload_blob("lab/big", blob.digest, blob.aiter(), size=blob.size)
            hasher, largest = hashlib.sha256(), 0
            async for chunk in reg.stream_blob("lab/big", blob.digest):
                hasher.update(chunk)
                largest = max(largest, len(chunk))
            assert f"sha256:{hasher.hexdigest()}" == blob.digest
            assert largest <= 1024 * 1024  # chunks, not the whole blob at once

    mark = lab_registry.mark()
    asyncio.run(body())
    # POST, one streamed PATCH, PUT; then one GET. (A streamed body is never replayed, so the
    # auth layer first probes /v2/ once to learn whether the registry wants credentials.)
    calls = Counter(e.method for e in lab_registry.requests_since(mark) if e.path != "/v2/")
    assert calls == {"POST": 1, "PATCH": 1, "PUT": 1, "GET": 1}


def test_registry_errors_carry_status_and_oci_code(lab_registry: LabRegistry) -> None:
    async def body() -> None:
        async with open_http_registry(lab_registry.host) as reg:
            with pytest.raises(RegistryError) as raised:
                await reg.list_tags("lab/never-pushed")
            error = raised.value
            assert (error.status, error.oci_code, error.retryable) == (404, "NAME_UNKNOWN", False)
            assert error.registry == lab_registry.host
            assert error.image == "lab/never-pushed"
            assert "NAME_UNKNOWN" in error.render()

    asyncio.run(body())
