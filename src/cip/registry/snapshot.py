"""Snapshot of what a registry holds, through the distribution spec alone.

Upstream needs Google's tags/list extension to see digests; here every repository under the
prefix comes from the paginated catalog, its tags from tags/list, each tag's digest from a HEAD
(or from the listing when a registry volunteers it), and the children of each index from the
index itself: untagged children are what `--minimal-snapshot` leaves out.

What the distribution spec cannot show is said, not hidden: without a digest listing, a digest
that has no tag and is no child of a listed index is invisible, so the result counts the
repositories read that way for the caller to report.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from cip.errors import RegistryError
from cip.model.refs import Registry as RegistryName
from cip.oci.media import INDEX_TYPES
from cip.plan.snapshot import Snapshot
from cip.registry.client import Registry
from cip.registry.pool import RegistryPool


@dataclass(frozen=True)
class RegistrySnapshot:
    rows: Snapshot
    names_below: str  # image names are relative to this registry path
    tags_only: int  # repositories listed without digests (no listing extension)


async def registry_snapshot(
    pool: RegistryPool,
    registry: RegistryName,
    *,
    minimal: bool = False,
    only_tag: str | None = None,
    concurrency: int = 32,
) -> RegistrySnapshot:
    """Every repository at or below `registry`'s path.

    When the path names a repository itself, names are relative to its parent, so that the
    repository has a name and the rows paste into a manifest whose registry is that parent.
    """
    client = pool.client(registry)
    prefix = registry.path
    repositories = sorted(
        [
            repo
            async for repo in client.catalog()
            if not prefix or repo == prefix or repo.startswith(prefix + "/")
        ]
    )
    base = prefix.rpartition("/")[0] if prefix in repositories else prefix
    limit = asyncio.Semaphore(concurrency)
    results = await asyncio.gather(
        *(_repository(client, repo, minimal, limit) for repo in repositories)
    )
    snapshot: Snapshot = {}
    tags_only = 0
    for repo, (digests, listed_digests) in zip(repositories, results, strict=True):
        tags_only += not listed_digests
        if only_tag is not None:
            digests = {d: tags for d, tags in digests.items() if only_tag in tags}
        if digests:
            snapshot[repo[len(base) + 1 :] if base else repo] = digests
    names_below = f"{registry.host}/{base}" if base else registry.host
    if registry.oci_dir is not None:
        names_below = registry.name
    return RegistrySnapshot(snapshot, names_below, tags_only)


async def _repository(
    client: Registry, repository: str, minimal: bool, limit: asyncio.Semaphore
) -> tuple[dict[str, set[str]], bool]:
    """Digests with their tags, and whether the registry listed digests (not only tags)."""
    async with limit:
        try:
            listing = await client.list_tags(repository)
        except RegistryError as error:
            if error.status == 404:
                # Distribution catalogs a repository once a blob is in it; tags/list says
                # NAME_UNKNOWN until its first manifest.
                return {}, True
            raise
    digests: dict[str, set[str]] = {}
    indexes: set[str] = set()
    if listing.manifests is not None:
        for entry in listing.manifests.values():
            digests.setdefault(entry.digest, set()).update(entry.tags)
            if entry.media_type in INDEX_TYPES:
                indexes.add(entry.digest)
    else:
        tags: Sequence[str] = sorted(listing.tags)

        async def head(tag: str) -> tuple[str, str, str] | None:
            async with limit:
                info = await client.head_manifest(repository, tag)
            return None if info is None else (tag, info.digest, info.media_type)

        for found in await asyncio.gather(*(head(tag) for tag in tags)):
            if found is None:
                continue  # deleted since the listing
            tag, digest, media_type = found
            digests.setdefault(digest, set()).add(tag)
            if media_type in INDEX_TYPES:
                indexes.add(digest)
    if not minimal:
        for index in sorted(indexes):
            async with limit:
                manifest = await client.get_manifest(repository, index)
            for child in manifest.parse().children:
                digests.setdefault(child.digest, set())
    return digests, listing.manifests is not None
