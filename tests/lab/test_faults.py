"""Retries, rate limits and concurrency limits, through a fault-injecting proxy in front of a
real registry (tests/lab/fault_proxy.py): resets, 500/503, 429 with and without Retry-After,
slow answers. Assertions are on what the proxy and the registry saw, not on wall time."""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from cip.errors import RegistryError
from cip.transport.counting import RequestCounter
from cip.transport.ratelimit import RateLimitConfig, RateLimiter
from cip.transport.retry import RetryPolicy
from tests.lab import images
from tests.lab.fault_proxy import (
    PASS,
    RESET,
    RESET_AFTER,
    EveryNth,
    Fault,
    FaultProxy,
    ProxyRequest,
    Script,
    ServerRateLimit,
    slow,
    status,
)
from tests.lab.registry_lab import LabRegistry
from tests.lab.stack import cip_requests_per_second, resilient_registry

# Faults cycled through every 3rd request: no request can meet two in a row, so all succeed.
CYCLE = [
    RESET,
    status(500),
    status(503),
    status(429, retry_after="0"),
    status(429),
    slow(1.5),  # beyond the 1 s read timeout: a ReadTimeout, retried
    slow(0.2),  # slow but within the timeout
    status(502),
    RESET_AFTER,  # the registry did the work; only GET/HEAD get this (see below)
]


class Cycling:
    """Every 3rd request gets the next fault of CYCLE; RESET_AFTER only hits reads.

    A lost answer to an upload's final PUT cannot be fixed by replaying the PUT (the session is
    gone); `upload_blob` then checks the blob, tested on its own below.
    """

    def __init__(self) -> None:
        self.seen = 0
        self.injected: list[Fault] = []

    def __call__(self, request: ProxyRequest) -> Fault:
        self.seen += 1
        if self.seen % 3:
            return PASS
        fault = CYCLE[len(self.injected) % len(CYCLE)]
        if fault is RESET_AFTER and request.method not in ("GET", "HEAD"):
            return PASS
        self.injected.append(fault)
        return fault


def test_every_operation_succeeds_through_resets_5xx_429_and_slow_answers(
    lab_registry: LabRegistry,
) -> None:
    index = images.oci_index(21)
    docker = images.docker_image(22)
    schedule = Cycling()
    counter = RequestCounter()

    async def body() -> None:
        async with FaultProxy(lab_registry.host, schedule) as proxy:
            # Injected 429s cut the adaptive rate; recover fast so the test stays short.
            limiter = RateLimiter(RateLimitConfig(recovery=5.0))
            reg = resilient_registry(proxy.host, limiter=limiter, counter=counter, timeout=1.0)
            try:
                await reg.ping()
                assert await images.push(reg, "lab/a", index, "v1") == index.digest
                assert await images.push(reg, "lab/b", docker, "v2") == docker.digest
                for repo, image in (("lab/a", index), ("lab/b", docker)):
                    got = await reg.get_manifest(repo, image.digest)
                    assert got.data == image.manifest
                    info = await reg.head_manifest(repo, image.digest)
                    assert info is not None and info.digest == image.digest
                blob = docker.blobs[-1]
                hasher = hashlib.sha256()
                async for chunk in reg.stream_blob("lab/b", blob.digest):
                    hasher.update(chunk)
                assert f"sha256:{hasher.hexdigest()}" == blob.digest
                assert (await reg.mount_blob("lab/c", blob.digest, "lab/b")).mounted
                assert (await reg.list_tags("lab/a")).tags == ("v1",)
                assert [r async for r in reg.catalog()] == ["lab/a", "lab/b", "lab/c"]
            finally:
                await reg.aclose()
            return None

    asyncio.run(body())
    kinds = Counter(f.kind if f.kind != "status" else str(f.status) for f in schedule.injected)
    # Every kind of fault was met at least once, and nothing failed.
    assert {"reset", "500", "503", "429", "slow", "502", "reset-after"} <= set(kinds)
    statuses = Counter(status for (_, _, status) in counter.counts.elements())
    assert statuses[0] >= 2 and statuses[429] >= 2  # counted per attempt, by status
    assert counter.total > schedule.seen - 3  # every attempt through the proxy was counted


def test_exhausted_budget_raises_a_retryable_error_naming_the_registry(
    lab_registry: LabRegistry,
) -> None:
    policy = RetryPolicy(attempts=4, budget_seconds=10, base_delay=0.01, max_delay=0.05)
    schedule = Script([status(503)] * 100, methods=frozenset({"GET"}), path="tags")

    async def body(proxy_holder: list[FaultProxy]) -> None:
        async with FaultProxy(lab_registry.host, schedule) as proxy:
            proxy_holder.append(proxy)
            reg = resilient_registry(proxy.host, policy=policy)
            try:
                with pytest.raises(RegistryError) as raised:
                    await reg.list_tags("lab/x")
            finally:
                await reg.aclose()
            error = raised.value
            assert error.retryable and error.status == 503
            assert error.registry == proxy.host
            assert "4 attempts" in error.message and "UNAVAILABLE" in error.message

    holder: list[FaultProxy] = []
    asyncio.run(body(holder))
    attempts = [r for r in holder[0].records if "tags" in r.request.path]
    assert len(attempts) == 4


def test_retry_after_is_honoured_and_one_beyond_the_budget_fails_at_once(
    lab_registry: LabRegistry,
) -> None:
    # Retry-After as an HTTP date (RFC 9110 §10.2.3) one second ahead, then as seconds.
    schedule = Script([status(429, retry_after="1")], methods=frozenset({"GET"}), path="tags")
    policy = RetryPolicy(attempts=5, budget_seconds=5, base_delay=0.01, max_delay=0.01)

    async def body() -> FaultProxy:
        async with FaultProxy(lab_registry.host, schedule) as proxy:
            reg = resilient_registry(proxy.host, policy=policy)
            try:
                await images.push(reg, "lab/r", images.oci_image(30), "v1")
                assert (await reg.list_tags("lab/r")).tags == ("v1",)
                proxy.schedule = Script([status(429, retry_after="3600")])
                with pytest.raises(RegistryError) as raised:
                    await reg.list_tags("lab/r")
                assert raised.value.retryable and "3600 s" in raised.value.message
            finally:
                await reg.aclose()
            return proxy

    proxy = asyncio.run(body())
    tags = [r for r in proxy.records if "tags/list" in r.request.path]
    assert [r.status for r in tags] == [429, 200, 429]  # no retry beyond the budget
    assert tags[1].request.at - tags[0].request.at >= 1.0  # waited as told, not less


def test_streamed_upload_is_not_replayed_but_fails_retryably_then_restarts(
    lab_registry: LabRegistry,
) -> None:
    blob = images.seeded_blob(31, 2 * 1024 * 1024 + 3)

    async def chunks() -> AsyncIterator[bytes]:
        for chunk in blob.chunks(256 * 1024):
            yield chunk

    async def body() -> FaultProxy:
        schedule = Script([RESET], methods=frozenset({"PATCH"}))
        async with FaultProxy(lab_registry.host, schedule) as proxy:
            reg = resilient_registry(proxy.host)
            try:
                with pytest.raises(RegistryError) as raised:
                    await reg.upload_blob("lab/s", blob.digest, chunks())
                assert raised.value.retryable and "restart the upload" in raised.value.message
                await reg.upload_blob("lab/s", blob.digest, chunks())  # the caller restarts
                assert await reg.blob_exists("lab/s", blob.digest)
            finally:
                await reg.aclose()
            return proxy

    proxy = asyncio.run(body())
    patches = [r.status for r in proxy.records if r.request.method == "PATCH"]
    assert patches == [0, 202]  # the reset PATCH was not replayed by the transport


def test_a_fixed_cap_is_never_exceeded(lab_registry: LabRegistry) -> None:
    cap = 12
    image = images.oci_image(40)
    config = RateLimitConfig.parse([f"{lab_registry.host}=100", "7", f"127.0.0.1:1={cap}"])
    assert config.rate_for(lab_registry.host) == 100 and config.default_rate == 7

    async def body() -> FaultProxy:
        async with FaultProxy(lab_registry.host) as proxy:
            limiter = RateLimiter(RateLimitConfig.parse([f"{proxy.host}={cap}"]))
            reg = resilient_registry(proxy.host, limiter=limiter)
            try:
                await images.push(reg, "lab/cap", image, "v1")
                await asyncio.gather(
                    *(reg.head_manifest("lab/cap", image.digest) for _ in range(2 * cap))
                )
            finally:
                await reg.aclose()
            return proxy

    proxy = asyncio.run(body())
    arrivals = sorted(r.request.at for r in proxy.records)
    assert len(arrivals) > 2 * cap
    # Any cap+1 consecutive arrivals span at least a second (20 ms allowed for loopback jitter
    # between the client's clock and the proxy's accept).
    spans = [b - a for a, b in zip(arrivals, arrivals[cap:], strict=False)]
    assert min(spans) >= 1.0 - 0.02
    # And from the registry's own access log: no wall-clock second holds more than the cap.
    per_second = cip_requests_per_second(lab_registry)
    assert sum(per_second.values()) == len(arrivals)
    assert max(per_second.values()) <= cap


def test_adaptive_rate_falls_on_429_and_recovers(lab_registry: LabRegistry) -> None:
    image = images.oci_image(41)
    # The "registry" allows 25 requests/second with a burst of 5, like a GCR/AR quota.
    quota = ServerRateLimit(rate=25, burst=5)
    config = RateLimitConfig(recovery=1.0)  # fast recovery so the test stays short

    async def body() -> tuple[RateLimiter, FaultProxy, list[float | None]]:
        async with FaultProxy(lab_registry.host) as proxy:
            limiter = RateLimiter(config)
            reg = resilient_registry(proxy.host, limiter=limiter)
            samples: list[float | None] = []
            try:
                await images.push(reg, "lab/ad", image, "v1")
                assert limiter.rate(proxy.host) is None  # uncapped until a 429
                proxy.schedule = quota
                heads = (reg.head_manifest("lab/ad", image.digest) for _ in range(60))
                assert all(await asyncio.gather(*heads))  # all succeeded despite the quota
                # Idle now: the rate climbs back until it is uncapped (bounded wait, no timing).
                for _ in range(100):
                    samples.append(limiter.rate(proxy.host))
                    if samples[-1] is None:
                        break
                    await asyncio.sleep(0.05)
            finally:
                await reg.aclose()
            return limiter, proxy, samples

    limiter, proxy, samples = asyncio.run(body())
    host_limit = limiter.host(proxy.host)
    assert 429 in proxy.statuses() and host_limit.cuts >= 1
    _, before, after = host_limit.history[0]
    assert after == before * config.decrease  # multiplicative cut on the first 429
    capped = [rate for rate in samples if rate is not None]
    assert capped == sorted(capped)  # additive recovery: never falls without a 429
    assert samples[-1] is None  # fully recovered: uncapped again


def test_per_host_concurrency_limit(lab_registry: LabRegistry) -> None:
    image = images.oci_image(42)

    async def body() -> FaultProxy:
        async with FaultProxy(lab_registry.host) as proxy:
            limiter = RateLimiter(RateLimitConfig.parse(concurrency=[f"{proxy.host}=2"]))
            reg = resilient_registry(proxy.host, limiter=limiter)
            try:
                await images.push(reg, "lab/cc", image, "v1")
                proxy.schedule = EveryNth(1, slow(0.05))
                proxy.peak_in_flight = 0
                await asyncio.gather(*(reg.get_manifest("lab/cc", "v1") for _ in range(12)))
            finally:
                await reg.aclose()
            return proxy

    proxy = asyncio.run(body())
    assert proxy.peak_in_flight == 2


def test_a_lost_answer_to_an_uploads_final_put_is_an_upload_done(
    lab_registry: LabRegistry,
) -> None:
    """The registry stored the blob but its answer to the final PUT was lost (reset after the
    registry saw it): the replayed PUT finds the session closed (404 BLOB_UPLOAD_UNKNOWN), yet
    the blob is there, so the upload succeeded. Signatures upload their payloads this way."""
    blob = images.bytes_blob(b"a signature payload, uploaded once")
    schedule = Script([RESET_AFTER], methods=frozenset({"PUT"}), path="/blobs/uploads/")

    async def body() -> None:
        async with FaultProxy(lab_registry.host, schedule) as proxy:
            reg = resilient_registry(proxy.host)
            try:
                await reg.upload_blob("lab/sig", blob.digest, blob.data or b"")
                assert await reg.blob_exists("lab/sig", blob.digest)
            finally:
                await reg.aclose()
            puts = [r for r in proxy.records if r.request.method == "PUT"]
            assert [r.fault for r in puts][:1] == [RESET_AFTER] and len(puts) == 2

    asyncio.run(body())
