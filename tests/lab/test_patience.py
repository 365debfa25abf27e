"""Retries as patient as real outages, with one circuit per host, through a fault proxy.

A registry behind the proxy fails for a while (an outage that ends) or for good (a host that is
down); the retry policy's patience is a deadline, and the host's circuit keeps waiting requests
from each spending it. The token service is retried too. Patience is seconds here, minutes in
production (`--retry-timeout`, default 5m).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from cip.errors import RegistryError
from cip.transport.credentials import CredentialStore, EnvCredentials, env_variable
from cip.transport.retry import RetryPolicy
from tests.lab import images
from tests.lab.auth_lab import KeyPair, TokenServer, running_token_server, self_signed
from tests.lab.fault_proxy import FaultProxy, Outage, Script, status
from tests.lab.registry_lab import LabRegistry
from tests.lab.stack import resilient_registry

PATIENT = RetryPolicy(budget_seconds=20, base_delay=0.05, max_delay=0.2)
IMPATIENT = RetryPolicy(budget_seconds=1.5, base_delay=0.05, max_delay=1.0)


def _push(lab: LabRegistry, repositories: list[str]) -> images.Image:
    image = images.oci_image(70)

    async def body() -> None:
        reg = resilient_registry(lab.host)
        try:
            for repository in repositories:
                await images.push(reg, repository, image, "v1")
        finally:
            await reg.aclose()

    asyncio.run(body())
    return image


def test_an_outage_longer_than_five_attempts_is_waited_out(lab_registry: LabRegistry) -> None:
    repositories = [f"lab/o{i}" for i in range(10)]
    _push(lab_registry, repositories)

    async def body() -> FaultProxy:
        # Every request fails with 503 for 1.5 s: the old five attempts in ~0.5 s gave up.
        async with FaultProxy(lab_registry.host, Outage(1.5)) as proxy:
            reg = resilient_registry(proxy.host, policy=PATIENT)
            try:
                listed = await asyncio.gather(*(reg.list_tags(r) for r in repositories))
            finally:
                await reg.aclose()
            assert [t.tags for t in listed] == [("v1",)] * len(repositories)
            return proxy

    proxy = asyncio.run(body())
    failed = [r for r in proxy.records if r.status == 503]
    assert failed and proxy.records[-1].status == 200
    # While the host failed, the others waited on its circuit: one trial at a time after the
    # first wave, not every request retrying on its own every ~0.1 s.
    first_wave = len(repositories)
    assert len(failed) <= first_wave + 1.5 / 0.05


def test_a_host_that_stays_down_fails_every_request_once(lab_registry: LabRegistry) -> None:
    repositories = [f"lab/d{i}" for i in range(20)]

    async def body() -> tuple[FaultProxy, list[BaseException], int]:
        async with FaultProxy(lab_registry.host, Outage(3600)) as proxy:
            reg = resilient_registry(proxy.host, policy=IMPATIENT)
            try:
                errors = await asyncio.gather(
                    *(reg.list_tags(r) for r in repositories), return_exceptions=True
                )
                seen = len(proxy.records)
                # Broken circuit: a later request fails at once, without reaching the host.
                with pytest.raises(RegistryError, match="kept failing"):
                    await reg.head_manifest("lab/d0", "v1")
                assert len(proxy.records) == seen
            finally:
                await reg.aclose()
            return proxy, list(errors), seen

    proxy, errors, seen = asyncio.run(body())
    assert all(isinstance(e, RegistryError) and e.retryable for e in errors)
    assert all(e.registry == proxy.host for e in errors if isinstance(e, RegistryError))
    assert any("kept failing" in str(e) for e in errors)
    # 20 requests with 1.5 s of patience each, retrying every ~0.1 s, would have sent ~300.
    assert seen <= len(repositories) + 1.5 / 0.05


def test_the_token_service_is_retried_too(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    password = "token-patience-Secret-1"
    signer: KeyPair = self_signed("cip-lab-token-signer")
    bundle, _ = signer.write(tmp_path, "token-signer")
    server = TokenServer(signer, users={"alice": password})

    async def body(token_host: str) -> FaultProxy:
        schedule = Script([status(503), status(502)], path="/token")
        async with FaultProxy(token_host, schedule) as proxy:
            config = server.registry_config(bundle)
            config["auth"]["token"]["realm"] = f"http://{proxy.host}/token"
            lab = registry_factory(config)
            store = CredentialStore([EnvCredentials({env_variable(lab.host): f"alice:{password}"})])
            reg = resilient_registry(lab.host, credentials=store, policy=PATIENT)
            try:
                await images.push(reg, "lab/t", images.oci_image(71), "v1")
                assert await reg.head_manifest("lab/t", "v1") is not None
            finally:
                await reg.aclose()
            return proxy

    with running_token_server(server):
        proxy = asyncio.run(body(f"127.0.0.1:{server.port}"))
    assert proxy.statuses()[:3] == [503, 502, 200]  # the first token fetch, retried twice
    assert server.issued
