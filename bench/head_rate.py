"""HEAD-manifest request rate: cip's client against minimal raw aiohttp and httpx loops.

All run in the same process against the same lab registry, at the same concurrency, in
alternating rounds, so registry warm-up and machine noise hit all alike. The raw aiohttp loop
is the floor of what any aiohttp-based client can do; the target is cip >= 70 % of it. cip also
runs on uvloop's event loop, which is how the benefit of uvloop is measured, and the raw httpx
loop shows what the previous HTTP stack cost. The registry log confirms every contender made
exactly one request per HEAD.

    python3 -m bench.head_rate [--concurrency 32] [--requests 4000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import aiohttp
import httpx
from tests.lab import images
from tests.lab.registry_lab import LabRegistry, running_registry

from cip.oci import media
from cip.registry.connect import create_http_registry

REPOSITORY = "bench/app"
TAG = "v1"


async def _drive(call: Callable[[], Awaitable[None]], requests: int, concurrency: int) -> float:
    """Requests per second for `requests` calls spread over `concurrency` workers."""
    per_worker, extra = divmod(requests, concurrency)

    async def worker(n: int) -> None:
        for _ in range(n):
            await call()

    started = time.perf_counter()
    await asyncio.gather(*(worker(per_worker + (i < extra)) for i in range(concurrency)))
    return requests / (time.perf_counter() - started)


async def raw_aiohttp_rate(lab: LabRegistry, requests: int, concurrency: int) -> float:
    connector = aiohttp.TCPConnector(limit=concurrency)
    url = f"{lab.url}/v2/{REPOSITORY}/manifests/{TAG}"
    headers = {"Accept": media.ACCEPT_MANIFESTS}
    async with aiohttp.ClientSession(connector=connector) as client:

        async def head() -> None:
            async with client.head(url, headers=headers) as response:
                assert response.status == 200

        await head()  # connect, like cip's probe below: not measured
        return await _drive(head, requests, concurrency)


async def raw_rate(lab: LabRegistry, requests: int, concurrency: int) -> float:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    url = f"{lab.url}/v2/{REPOSITORY}/manifests/{TAG}"
    headers = {"Accept": media.ACCEPT_MANIFESTS}
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def head() -> None:
            response = await client.head(url, headers=headers)
            assert response.status_code == 200

        await head()  # connect, like cip's probe below: not measured
        return await _drive(head, requests, concurrency)


async def cip_rate(lab: LabRegistry, requests: int, concurrency: int) -> float:
    registry = create_http_registry(lab.host, max_connections=concurrency)
    try:

        async def head() -> None:
            assert await registry.head_manifest(REPOSITORY, TAG) is not None

        await head()  # scheme probe and connect: not measured
        return await _drive(head, requests, concurrency)
    finally:
        await registry.aclose()


async def _push(lab: LabRegistry) -> None:
    registry = create_http_registry(lab.host)
    try:
        await images.push(registry, REPOSITORY, images.oci_image(1), TAG)
    finally:
        await registry.aclose()


Rate = Callable[[LabRegistry, int, int], Coroutine[Any, Any, float]]


def on_uvloop(rate: Rate) -> Rate:
    """The same contender, run by `_measure` on uvloop's event loop."""

    async def wrapped(lab: LabRegistry, requests: int, concurrency: int) -> float:
        return await rate(lab, requests, concurrency)

    wrapped.uvloop = True  # type: ignore[attr-defined]
    return wrapped


CONTENDERS: dict[str, Rate] = {
    "raw aiohttp loop": raw_aiohttp_rate,
    "cip client": cip_rate,
    "cip client + uvloop": on_uvloop(cip_rate),
    "raw httpx loop": raw_rate,
}
RAW = "raw aiohttp loop"


def _measure(rate: Rate, lab: LabRegistry, requests: int, concurrency: int) -> tuple[float, float]:
    """(requests per second, client CPU milliseconds per request) of one round."""
    mark = lab.mark()
    cpu = time.process_time()
    if getattr(rate, "uvloop", False):
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            per_second = runner.run(rate(lab, requests, concurrency))
    else:
        per_second = asyncio.run(rate(lab, requests, concurrency))
    cpu_ms = (time.process_time() - cpu) * 1000 / requests
    heads = lab.count_since(mark)["HEAD"]
    assert heads == requests + 1, f"{heads} HEADs logged for {requests} calls"
    return per_second, cpu_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    contenders = CONTENDERS
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
    with running_registry() as lab:
        asyncio.run(_push(lab))
        for round_ in range(args.rounds):
            # ABBA order: drift in machine load hits both sides alike.
            order = list(contenders) if round_ % 2 == 0 else list(reversed(contenders))
            for name in order:
                results[name].append(
                    _measure(contenders[name], lab, args.requests, args.concurrency)
                )
    print(
        f"HEAD manifest: concurrency {args.concurrency}, {args.requests} requests x "
        f"{args.rounds} rounds, one registry (docker-registry 2.8.2, plain HTTP/1.1 on loopback)"
    )
    medians = {}
    for name, rounds in results.items():
        rate = statistics.median(r for r, _ in rounds)
        cpu = statistics.median(c for _, c in rounds)
        medians[name] = rate
        listed = ", ".join(f"{r:.0f}" for r, _ in rounds)
        print(f"  {name:20}: {rate:7.0f} req/s median, client CPU {cpu:.2f} ms/req  ({listed})")
    ratio = medians["cip client"] / medians[RAW]
    print(f"  ratio               : {ratio:7.1%} of raw aiohttp (target >= 70 %)")
    print("  registry log        : exactly one HEAD per call for every contender")


if __name__ == "__main__":
    main()
