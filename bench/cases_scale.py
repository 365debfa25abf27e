"""Cases 6 and 7: planning request rate, and planning at 2,000 and 10,000 images.

Case 6 reuses `bench.head_rate` (cip's client, also on uvloop, against minimal raw aiohttp and
httpx HEAD loops, same registry, same concurrency, alternating rounds). Case 7 fills a staging registry fast, then
times `cip run` without `--confirm` (a dry run: the plan phase) of the first N images into three
empty mirrors, once per size, and compares the cost per image across sizes.

The fill is cheap by construction: every image shares one layer and one config and differs only
by a manifest annotation, ten images per repository, so an image costs three tag PUTs plus a
tenth of a layer and config mount: what the planner reads is the same as for real images.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from tests.lab.images import oci_image, push
from tests.lab.registry_lab import LabRegistry

from bench import head_rate
from bench.lab import Lab, cip_argv, marks_of, request_counts, run_measured, spread, total
from bench.profile import profile_cip
from cip.oci import media
from cip.registry.connect import open_http_registry

IMAGES_PER_REPOSITORY = 10
TAGS_PER_IMAGE = 3
FILL_CONCURRENCY = 8  # the registry is the limit; more only adds client CPU on 2 cores


def planning_rate(
    lab: Lab, requests: int, rounds: int, concurrency: int, log: Callable[[str], None]
) -> dict[str, Any]:
    """Case 6: HEAD requests per second, cip client vs raw loops, order reversed every round."""
    registry = lab.registry("head-rate")
    asyncio.run(head_rate._push(registry))
    contenders = head_rate.CONTENDERS
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
    for round_ in range(rounds):
        order = list(contenders) if round_ % 2 == 0 else list(reversed(contenders))
        for name in order:
            results[name].append(
                head_rate._measure(contenders[name], registry, requests, concurrency)
            )
        log(f"  case 6 round {round_ + 1}: " + ", ".join(
            f"{n} {results[n][-1][0]:.0f} req/s" for n in contenders
        ))  # fmt: skip
    lab.discard(registry)
    summary = {
        name: {
            "requests_per_s": spread([r for r, _ in items]),
            "client_cpu_ms_per_request": spread([c for _, c in items]),
            "runs": [{"requests_per_s": r, "client_cpu_ms": c} for r, c in items],
        }
        for name, items in results.items()
    }
    ratio = (
        summary["cip client"]["requests_per_s"]["median"]
        / summary[head_rate.RAW]["requests_per_s"]["median"]
    )
    return {
        "concurrency": concurrency,
        "requests_per_round": requests,
        "rounds": rounds,
        "variants": summary,
        "ratio_cip_to_raw": ratio,
    }


def _repository(index: int) -> str:
    return f"s{index // IMAGES_PER_REPOSITORY:05d}"


def _tags(index: int) -> list[str]:
    """Three tags per image, unique within its repository (`3.0`, `3.0-a`, `3.0-b`)."""
    version = f"{index % IMAGES_PER_REPOSITORY}.0"
    return [version, f"{version}-a", f"{version}-b"]


def _manifests(base: bytes, count: int) -> list[bytes]:
    """`count` distinct manifests sharing the base image's config and layer."""
    body = json.loads(base)
    out = []
    for i in range(count):
        body["annotations"] = {"bench.image": str(i)}
        out.append(json.dumps(body, indent=3).encode())
    return out


async def _fill(host: str, count: int) -> list[str]:
    """Push `count` images × 3 tags; returns their digests, image i in repository i // 10."""
    base = oci_image(77, layers=1)
    manifests = _manifests(base.manifest, count)
    repositories = sorted({_repository(i) for i in range(count)})
    limit = asyncio.Semaphore(FILL_CONCURRENCY)
    async with open_http_registry(host, max_connections=FILL_CONCURRENCY) as client:
        await push(client, "stage/base", base)

        async def mount_blobs(repository: str) -> None:
            for blob in base.blobs:
                async with limit:
                    await client.mount_blob(f"stage/{repository}", blob.digest, "stage/base")

        async def put(index: int, tag: str) -> None:
            async with limit:
                await client.put_manifest(
                    f"stage/{_repository(index)}", tag, manifests[index], media.OCI_MANIFEST
                )

        await asyncio.gather(*(mount_blobs(r) for r in repositories))
        await asyncio.gather(*(put(i, t) for i in range(count) for t in _tags(i)))
    return [media.compute_digest(m) for m in manifests]


def _manifest(path: Path, source: str, mirrors: list[str], digests: list[str]) -> Path:
    images: dict[str, dict[str, list[str]]] = {}
    for index, digest in enumerate(digests):
        images.setdefault(_repository(index), {})[digest] = _tags(index)
    body = {
        "registries": [{"name": source, "src": True}, *({"name": m} for m in mirrors)],
        "images": [{"name": name, "dmap": dmap} for name, dmap in images.items()],
    }
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def _hosts(manifest_text: str) -> list[str]:
    """The `host:port` of each registry named in a manifest written by `_manifest`."""
    body = yaml.safe_load(manifest_text)
    return [str(r["name"]).split("/", 1)[0] for r in body["registries"]]


def scale(
    lab: Lab,
    workdir: Path,
    sizes: list[int],
    log: Callable[[str], None],
    *,
    profile_missed: bool = True,
) -> dict[str, Any]:
    """Case 7: fill once with the largest size, then dry-run each size once."""
    staging = lab.registry("scale-staging")
    started = time.perf_counter()
    digests = asyncio.run(_fill(staging.host, max(sizes)))
    fill_seconds = time.perf_counter() - started
    fill_requests = staging.mark()
    log(f"  case 7 fill: {max(sizes)} images in {fill_seconds:.1f} s, {fill_requests} requests")
    results: dict[str, Any] = {}
    for size in sizes:
        mirrors: list[LabRegistry] = [lab.registry(f"scale-mirror{m}") for m in range(3)]
        path = _manifest(
            workdir / f"scale-{size}.yaml",
            f"{staging.host}/stage",
            [f"{m.host}/prod" for m in mirrors],
            digests[:size],
        )
        labs = {"staging": staging} | {f"mirror{i + 1}": m for i, m in enumerate(mirrors)}
        marks = marks_of(labs)
        measured = run_measured(cip_argv(path, confirm=False)).check("cip dry run")
        counts = request_counts(labs, marks)
        results[str(size)] = {
            "images": size,
            "tags": size * TAGS_PER_IMAGE,
            "seconds": measured.seconds,
            "rss_mb": measured.rss_mb,
            "ms_per_image": measured.seconds * 1000 / size,
            "requests": counts,
            "requests_total": total(counts),
            "writes": total(counts, key="writes"),
        }
        log(f"  case 7 {size} images: {measured.seconds:.2f} s, {measured.rss_mb:.0f} MB")
        if size == min(sizes):
            smallest = path
        for mirror in mirrors:
            lab.discard(mirror)
    small, large = (results[str(s)] for s in (min(sizes), max(sizes)))
    ratio = large["ms_per_image"] / small["ms_per_image"]
    profile = None
    if profile_missed and ratio > 1.25:
        log("  profiling the smallest dry run (target missed)")
        mirrors = [lab.registry(f"scale-mirror{m}") for m in range(3)]
        text = smallest.read_text()
        for old, new in zip(_hosts(text)[1:], mirrors, strict=True):
            text = text.replace(old, new.host)
        smallest.write_text(text)
        profile = profile_cip(smallest, confirm=False)
        for mirror in mirrors:
            lab.discard(mirror)
    lab.discard(staging)
    return {
        "profile": profile,
        "sizes": sizes,
        "fill_seconds": fill_seconds,
        "fill_requests": fill_requests,
        "images_per_repository": IMAGES_PER_REPOSITORY,
        "runs": results,
        "cost_ratio": ratio,
    }
