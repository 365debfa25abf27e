"""A registry serving TLS with a private certificate: verified, never silently downgraded."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from cip.errors import RegistryError
from cip.registry.connect import open_http_registry
from cip.transport.settings import NetworkOptions
from tests.lab import images
from tests.lab.registry_lab import LabRegistry, self_signed_tls


def test_private_ca_is_required_and_http11_is_spoken(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    tls = self_signed_tls(tmp_path / "tls")
    lab = registry_factory(tls)
    ca_file = str(tmp_path / "tls" / "cert.pem")
    image = images.oci_index(401)

    async def untrusted() -> None:
        async with open_http_registry(lab.host) as reg:
            # Loopback may fall back to plain HTTP, but not when TLS is there and untrusted.
            with pytest.raises(RegistryError, match="not trusted"):
                await reg.ping()

    async def trusted() -> None:
        async with open_http_registry(lab.host, NetworkOptions(ca_file=ca_file)) as reg:
            await images.push(reg, "lab/app", image, "v1")
            assert await reg.base_url() == f"https://{lab.host}"
            assert (await reg.get_manifest("lab/app", "v1")).data == image.manifest

    asyncio.run(untrusted())
    mark = lab.mark()
    asyncio.run(trusted())
    # HTTP/1.1 even where TLS offers HTTP/2: aiohttp speaks 1.1 only, and over 1.1 it still
    # costs a fifth of the CPU httpx spent over HTTP/2 (README, BENCHMARKS.md).
    assert {e.protocol for e in lab.requests_since(mark)} == {"HTTP/1.1"}
