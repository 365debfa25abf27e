"""What a source repository holds of one image, and how large the image is.

Two users: `cip check` (the `staging` check: the digest and every child of an index exist; the
`size` check) and `cip run --max-image-size` (copies of too-large images held back). Sizes come
from the manifests' descriptors, so no blob is read: an image's compressed size is the sum of
its config and layer blobs over every platform, each blob counted once (a layer shared by two
platforms is stored and copied once). Non-distributable (foreign) layers are not counted: cip
does not copy them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace

from cip.errors import RegistryError
from cip.model.refs import Registry as RegistryName
from cip.oci.media import Descriptor
from cip.plan.planner import Action, Plan, Verdict
from cip.registry.client import Registry
from cip.registry.pool import RegistryPool

MIB = 1024 * 1024
MAX_INDEX_DEPTH = 4  # an index of indexes is legal; deeper nesting is not seen in practice


@dataclass(frozen=True, slots=True)
class ImageFacts:
    """One digest in one repository: present or not, children an index lacks, its size."""

    digest: str
    present: bool
    missing_children: tuple[Descriptor, ...] = ()
    size: int | None = None  # compressed bytes; None when not every manifest could be read
    platforms: int = 0  # image manifests counted (1 for a single-platform image)
    error: str | None = None  # the repository could not be read


def describe_platform(descriptor: Descriptor) -> str:
    """`linux/arm64` for an index entry with a platform, else its media type."""
    platform = descriptor.platform or {}
    parts = [str(platform[k]) for k in ("os", "architecture", "variant") if platform.get(k)]
    return "/".join(parts) or descriptor.media_type or "no platform"


async def inspect_image(
    client: Registry, repository: str, digest: str, limit: asyncio.Semaphore | None = None
) -> ImageFacts:
    """Read the manifest of `digest` and, for an index, of every child (concurrently)."""
    gate = limit or asyncio.Semaphore(8)
    blobs: dict[str, int] = {}
    missing: list[Descriptor] = []
    platforms = 0

    async def walk(reference: str, depth: int) -> bool:
        nonlocal platforms
        try:
            async with gate:
                manifest = await client.get_manifest(repository, reference)
        except RegistryError as error:
            if error.status == 404:
                return False
            raise
        parsed = manifest.parse()
        if parsed.is_index and depth < MAX_INDEX_DEPTH:
            children = parsed.children
            found = await asyncio.gather(*(walk(c.digest, depth + 1) for c in children))
            missing.extend(c for c, ok in zip(children, found, strict=True) if not ok)
            return True
        platforms += 1
        for blob in parsed.blobs():
            blobs[blob.digest] = blob.size
        return True

    try:
        present = await walk(digest, 0)
    except RegistryError as error:
        return ImageFacts(digest, present=False, error=error.message)
    except OSError as error:  # an oci: layout that cannot be read
        return ImageFacts(digest, present=False, error=f"{error.filename}: {error.strerror}")
    if not present:
        return ImageFacts(digest, present=False)
    size = None if missing else sum(blobs.values())
    return ImageFacts(digest, True, tuple(missing), size, platforms)


def size_text(size: int) -> str:
    return f"{size / MIB:,.1f} MiB"


def too_large_message(facts: ImageFacts, max_mib: int) -> str:
    assert facts.size is not None
    noun = "platform" if facts.platforms == 1 else "platforms"
    return (
        f"{size_text(facts.size)} compressed (config and layers, {facts.platforms} {noun}), "
        f"above --max-image-size {max_mib:,} MiB"
    )


async def hold_back_large_images(
    plan: Plan, pool: RegistryPool, max_mib: int, *, concurrency: int = 32
) -> Plan:
    """The plan with every copy of an image above `max_mib` turned into a `too-large` verdict.

    Only copies are judged: an image already at a destination is not copied again. An image
    whose size cannot be read is left to the copy, which reports why it cannot read it.
    """
    copies: dict[tuple[str, str, str], list[int]] = {}
    for index, verdict in enumerate(plan.verdicts):
        if verdict.action is Action.COPY:
            group = plan.groups[verdict.group]
            copies.setdefault((group.source.name, group.image, group.digest), []).append(index)
    if not copies:
        return plan
    sources: dict[str, RegistryName] = {}
    for verdict in plan.verdicts:
        group = plan.groups[verdict.group]
        sources.setdefault(group.source.name, group.source)
    gate = asyncio.Semaphore(concurrency)

    async def size_of(key: tuple[str, str, str]) -> ImageFacts:
        client, repository = pool.locate(sources[key[0]], key[1])
        return await inspect_image(client, repository, key[2], gate)

    keys = list(copies)
    facts = await asyncio.gather(*(size_of(key) for key in keys))
    verdicts: list[Verdict] = list(plan.verdicts)
    limit = max_mib * MIB
    for key, found in zip(keys, facts, strict=True):
        if found.size is None or found.size <= limit:
            continue
        message = f"{too_large_message(found, max_mib)}: held back"
        for index in copies[key]:
            # Nothing is copied, so nothing is signed there either.
            verdicts[index] = replace(
                verdicts[index],
                action=Action.TOO_LARGE,
                error=message,
                signature=None,
                attestation=None,
            )
    return Plan(plan.groups, verdicts)
