"""The soak's parts: a seeded catalog, a chaos schedule for the fault proxies, a mirror that can
be restarted where it was, and a reader of everything a destination holds.

Everything random is drawn from generators seeded by the soak's seed, so a failing run can be
replayed with the same images, faults and kill points (timing still varies a little: kill points
count the writes a run made, faults are drawn per request in arrival order).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from cip.errors import RegistryError
from cip.model.refs import is_attached_tag
from cip.registry.client import Manifest, Registry
from cip.registry.connect import open_http_registry
from cip.trust.attached import parse_attached_tag, signature_tag
from tests.lab.fault_proxy import PASS, RESET, RESET_AFTER, Fault, ProxyRequest, status
from tests.lab.images import Image, docker_manifest_list, oci_image, oci_index, push
from tests.lab.registry_lab import LabRegistry, start_registry

TAGS = ("1.0", "latest")
WRITES = frozenset({"PUT", "PATCH", "POST", "DELETE"})


# -- the catalog --------------------------------------------------------------------------------


def build_catalog(rng: random.Random, count: int) -> dict[str, Image]:
    """`count` images: mostly small single-platform images with random layer sizes, one in ten a
    multi-arch index (OCI index or Docker manifest list), one in twelve with a 1 MiB layer so a
    kill can land in the middle of a blob."""
    base = rng.randrange(1, 10**6) * 1000
    images: dict[str, Image] = {}
    for i in range(count):
        seed = base + i
        if i % 10 == 3:
            images[f"multi{i:03d}"] = oci_index(seed)
        elif i % 10 == 7:
            images[f"list{i:03d}"] = docker_manifest_list(seed)
        else:
            large = 1 << 20 if i % 12 == 5 else None
            layers = rng.randint(1, 3)
            size = rng.randint(256, 64 * 1024)
            images[f"img{i:03d}"] = oci_image(
                seed, layers=layers, layer_size=size, large_layer=large
            )
    return images


def content_bytes(images: dict[str, Image]) -> int:
    """Bytes of every manifest and blob of the catalog, each once per repository: what one
    destination must receive at the least, signatures aside."""

    def of(image: Image, seen: set[str]) -> int:
        total = image.size
        for blob in image.blobs:
            if blob.digest not in seen:
                seen.add(blob.digest)
                total += blob.size
        return total + sum(of(child, seen) for child in image.children)

    return sum(of(image, set()) for image in images.values())


def all_digests(image: Image) -> list[str]:
    return [image.digest, *(d for child in image.children for d in all_digests(child))]


async def push_all(host: str, items: list[tuple[str, Image]], parallel: int = 32) -> None:
    """Stage every image under `stage/NAME:src`, `parallel` at a time, through cip's client."""
    gate = asyncio.Semaphore(parallel)
    async with open_http_registry(host) as client:

        async def one(name: str, image: Image) -> None:
            async with gate:
                await push(client, f"stage/{name}", image, "src")

        await asyncio.gather(*(one(n, i) for n, i in items))


# -- faults -------------------------------------------------------------------------------------

SCATTERED = (RESET, RESET_AFTER, status(500), status(502), status(503))


@dataclass
class Chaos:
    """A proxy schedule: scattered resets (before and after the registry saw the request) and
    5xx answers, and storms: windows of up to a second and a half in which every request gets
    503 (a 5xx storm) or 429 with `Retry-After: 1` (a 429 storm).

    Storms are spaced by exponential gaps drawn from the seed, starting from the first request
    after the schedule was (re)armed. `calm` turns everything off (for the final checks);
    `injected` counts what was injected, by kind. Called on the proxy's thread only.
    """

    seed: int
    scattered_rate: float = 0.02
    storm_gap: float = 10.0  # mean seconds between storms
    # A 429 storm ends within its Retry-After, as a registry shedding a burst does; a longer one
    # would cut the adaptive rate again after the pause (correctly) and slow the soak down.
    throttle_length: tuple[float, float] = (0.2, 0.9)
    outage_length: tuple[float, float] = (0.3, 1.5)
    calm: bool = False
    injected: dict[str, int] = field(default_factory=dict)
    _rng: random.Random = field(init=False)
    _storm: tuple[float, float, Fault] | None = None

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def __call__(self, request: ProxyRequest) -> Fault:
        if self.calm:
            return PASS
        fault = self._storm_fault(request.at)
        if fault is None and self._rng.random() < self.scattered_rate:
            fault = self._rng.choice(SCATTERED)
        if fault is None:
            return PASS
        kind = fault.kind if fault.kind != "status" else str(fault.status)
        self.injected[kind] = self.injected.get(kind, 0) + 1
        return fault

    def _storm_fault(self, now: float) -> Fault | None:
        if self._storm is None or now >= self._storm[1] + 30:
            # First request, or a long quiet spell (cip was not running): plan the next storm.
            self._storm = self._next_storm(now)
        start, end, fault = self._storm
        if now < start:
            return None
        if now < end:
            return fault
        self._storm = self._next_storm(now)
        return None

    def _next_storm(self, now: float) -> tuple[float, float, Fault]:
        start = now + self._rng.expovariate(1 / self.storm_gap)
        if self._rng.random() < 0.5:
            return start, start + self._rng.uniform(*self.outage_length), status(503)
        return start, start + self._rng.uniform(*self.throttle_length), status(429, "1")


# -- a restartable mirror -----------------------------------------------------------------------


@dataclass
class Mirror:
    """A lab registry that can be stopped by its PID and started again on the same port with
    the same storage, as an operator restarting a registry does."""

    lab: LabRegistry
    restarts: int = 0
    retired: list[LabRegistry] = field(default_factory=list)

    @property
    def host(self) -> str:
        return self.lab.host

    def restart(self, down_for: float, wait: Callable[[float], None]) -> None:
        port = int(self.lab.host.rsplit(":", 1)[1])
        self.lab.stop()  # SIGTERM to its PID, then wait for it
        wait(down_for)
        self.retired.append(self.lab)
        self.lab = start_registry(self.lab.root, port=port)
        self.restarts += 1


# -- what a destination holds -------------------------------------------------------------------


@dataclass
class Holdings:
    """Every tag of a destination, with what is wrong with it."""

    host: str
    tags: dict[tuple[str, str], str] = field(default_factory=dict)  # (repository, tag) → digest
    incomplete: list[str] = field(default_factory=list)  # repository:tag with content missing
    signature_layers: dict[tuple[str, str], int] = field(default_factory=dict)


async def _holdings(
    client: Registry, host: str, parallel: int, complete: set[tuple[str, str]]
) -> Holdings:
    found = Holdings(host)
    gate = asyncio.Semaphore(parallel)
    known: dict[tuple[str, str], bool] = {}  # (repository, digest) → complete, in this reading

    async def tagged(repository: str, tag: str) -> bool:
        async with gate:
            manifest = await client.get_manifest(repository, tag)
        found.tags[(repository, tag)] = manifest.digest
        if tag.endswith(".sig"):
            found.signature_layers[(repository, tag)] = len(manifest.parse().layers)
        if (repository, manifest.digest) in complete:
            return True
        if await references_present(repository, manifest):
            complete.add((repository, manifest.digest))
            return True
        return False

    async def references_present(repository: str, manifest: Manifest) -> bool:
        parsed = manifest.parse()
        checks = [child_complete(repository, c.digest) for c in parsed.children]
        checks += [blob_present(repository, b.digest) for b in parsed.blobs()]
        return all(await asyncio.gather(*checks))

    async def child_complete(repository: str, digest: str) -> bool:
        key = (repository, digest)
        if key in complete:
            return True
        if key not in known:
            async with gate:
                there = await client.head_manifest(repository, digest) is not None
                manifest = await client.get_manifest(repository, digest) if there else None
            known[key] = manifest is not None and await references_present(repository, manifest)
            if known[key]:
                complete.add(key)
        return known[key]

    async def blob_present(repository: str, digest: str) -> bool:
        key = (repository, digest)
        if key in complete:
            return True
        if key not in known:
            async with gate:
                known[key] = await client.blob_exists(repository, digest)
            if known[key]:
                complete.add(key)
        return known[key]

    async def repository(name: str) -> None:
        try:
            async with gate:
                tags = (await client.list_tags(name)).tags
        except RegistryError as error:
            # Distribution lists a repository once a blob is in it; tags/list is 404 until
            # its first manifest.
            if error.status == 404:
                return
            raise
        results = await asyncio.gather(*(tagged(name, tag) for tag in tags))
        found.incomplete.extend(
            f"{name}:{t}" for t, ok in zip(tags, results, strict=True) if not ok
        )

    names = [name async for name in client.catalog()]
    await asyncio.gather(*(repository(name) for name in names))
    return found


def read_holdings(
    hosts: list[str],
    remembered: dict[str, set[tuple[str, str]]] | None = None,
    parallel: int = 16,
) -> list[Holdings]:
    """Read every tag of every repository of each host directly (no proxy), with everything each
    tag's manifest references: children, config, layers.

    `remembered` (per host: repository and digest of what was found complete) spares reading
    again what an earlier check found: nothing in the soak deletes, so what was complete stays
    complete. The final check reads everything afresh.
    """
    memory = remembered if remembered is not None else {}

    async def one(host: str) -> Holdings:
        async with open_http_registry(host) as client:
            return await _holdings(client, host, parallel, memory.setdefault(host, set()))

    async def go() -> list[Holdings]:
        return list(await asyncio.gather(*(one(host) for host in hosts)))

    return asyncio.run(go())


def wrong_tags(held: Holdings, images: dict[str, Image]) -> list[str]:
    """Tags that are not what the manifests promise: an image tag on another digest, a tag the
    manifests never name, a `.sig` beside a digest that is not promoted there."""
    problems = []
    for (repository, tag), digest in held.tags.items():
        name = repository.removeprefix("prod/")
        image = images.get(name)
        if image is None or not repository.startswith("prod/"):
            problems.append(f"{held.host}/{repository}:{tag} is not in the manifests")
        elif is_attached_tag(tag):
            attached = parse_attached_tag(tag)
            if attached is None or attached[0] not in all_digests(image):
                problems.append(f"{held.host}/{repository}:{tag} signs nothing promoted")
        elif tag not in TAGS or digest != image.digest:
            problems.append(f"{held.host}/{repository}:{tag} is {digest}, not {image.digest}")
    return problems


def missing_signatures(held: Holdings, images: dict[str, Image]) -> list[str]:
    """Promoted digests (index children included) without a `.sig` of exactly one layer."""
    problems = []
    for name, image in images.items():
        for digest in all_digests(image):
            layers = held.signature_layers.get((f"prod/{name}", signature_tag(digest)))
            if layers != 1:
                problems.append(f"{held.host}/prod/{name}@{digest}: {layers} signature layers")
    return problems
