"""A promotion through fault-injecting proxies: resets, 5xx and 429 storms, lost answers.

The registries are real; proxies in front of the staging registry and both mirrors fail about
one request in three, rotating through the kinds of fault. Every edge must be correct at the end.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Callable
from pathlib import Path

from cip.promote.pipeline import load_and_validate, run_phases
from cip.registry.connect import open_http_registry
from cip.registry.pool import RegistryPool
from cip.transport.ratelimit import RateLimitConfig, RateLimiter
from cip.transport.retry import RetryPolicy
from tests.e2e.conftest import push_images
from tests.e2e.test_dry_run import manifest
from tests.lab.fault_proxy import RESET, RESET_AFTER, Fault, FaultProxy, ProxyRequest, slow, status
from tests.lab.images import Image, docker_manifest_list, oci_image, oci_index
from tests.lab.registry_lab import LabRegistry

FAULTS = (
    RESET,
    status(500),
    status(503),
    status(429, "0"),
    status(429),
    RESET_AFTER,
    status(502),
    slow(0.05),
)


class Storm:
    """About one request in three fails, cycling through every kind of fault.

    Which requests fail is drawn from a seeded generator rather than every third one: a fixed
    period would always hit the same step of a retried sequence (HEAD, POST, PATCH), which no
    real network does.
    """

    def __init__(self, seed: int) -> None:
        self.seen = 0
        self.injected: list[Fault] = []
        self._chance = random.Random(seed)

    def __call__(self, request: ProxyRequest) -> Fault:
        self.seen += 1
        if self._chance.random() > 1 / 3:
            return Fault()
        fault = FAULTS[len(self.injected) % len(FAULTS)]
        self.injected.append(fault)
        return fault


def test_every_edge_correct_after_a_storm_of_faults(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging, mirror_a, mirror_b = registry_factory(), registry_factory(), registry_factory()
    catalog: dict[str, Image] = {
        "small": oci_image(400),
        "layers": oci_image(401, layers=3, layer_size=2_000_000),
        "multi": oci_index(402),
        "list": docker_manifest_list(403),
    }
    push_images(staging, [(n, i, "src") for n, i in catalog.items()])
    storms = [Storm(1), Storm(2), Storm(3)]

    async def scenario() -> None:
        async with (
            FaultProxy(staging.host, storms[0]) as source,
            FaultProxy(mirror_a.host, storms[1]) as proxy_a,
            FaultProxy(mirror_b.host, storms[2]) as proxy_b,
        ):
            images = "".join(
                f'- name: {n}\n  dmap:\n    "{i.digest}": ["1.0", "latest"]\n'
                for n, i in catalog.items()
            )
            path = manifest(tmp_path / "m.yaml", source.host, [proxy_a.host, proxy_b.host], images)
            validated = load_and_validate([str(path)], [])
            pool = RegistryPool(
                limiter=RateLimiter(RateLimitConfig(recovery=5.0)),
                retry=RetryPolicy(attempts=8, budget_seconds=30, base_delay=0.01, max_delay=0.1),
                timeout=5.0,
            )
            async with pool:
                outcome = await run_phases(validated.groups, pool, confirm=True)
            assert not outcome.plan.has_problems, [
                v.error for v in outcome.plan.verdicts if v.error
            ]

    asyncio.run(scenario())
    assert all(len(storm.injected) >= len(FAULTS) for storm in storms[1:])

    async def verify() -> None:
        for mirror in (mirror_a, mirror_b):
            async with open_http_registry(mirror.host) as client:
                for name, image in catalog.items():
                    for tag in ("1.0", "latest"):
                        got = await client.get_manifest(name, tag)
                        assert got.digest == image.digest
                        assert "sha256:" + hashlib.sha256(got.data).hexdigest() == image.digest
                        for child in got.parse().children:
                            assert await client.head_manifest(name, child.digest) is not None
                        for blob in got.parse().blobs():
                            assert await client.blob_exists(name, blob.digest)

    asyncio.run(verify())
