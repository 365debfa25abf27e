"""Judge what the production registries hold, for when events were lost.

Distribution queues notifications in memory, so a registry restart loses them; a Pub/Sub
subscription can expire. Reconcile lists every repository under each destination registry
from its catalog (so a rogue new repository is found as well as a rogue tag), reads one tag
listing per repository (Google's listing also names every digest, children included), and
judges every tag and digest with the same rules as the events.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from cip.audit.events import RegistryEvent
from cip.audit.judge import Auditor
from cip.audit.verdicts import Decision, Verdict, failed
from cip.errors import CipError, RegistryError
from cip.model.refs import Registry as RegistryName
from cip.promote.tally import Tally
from cip.registry.client import Registry
from cip.registry.pool import RegistryPool


@dataclass(frozen=True, slots=True)
class Listed:
    """One name found in a repository: a tag with its digest, or an untagged digest."""

    repository: str
    digest: str
    tag: str | None
    media_type: str | None


@dataclass(frozen=True)
class ReconcileResult:
    decisions: list[Decision]  # one per tag and untagged digest, then listing failures
    registries: tuple[str, ...]
    repositories: int
    tags_only: int  # repositories listed without digests: their untagged digests are unseen

    @property
    def problems(self) -> list[Decision]:
        return [d for d in self.decisions if d.verdict is not Verdict.VERIFIED]

    def counts(self) -> dict[str, int]:
        found = Counter(d.verdict for d in self.decisions)
        return {str(verdict): found.get(verdict, 0) for verdict in Verdict}


def _listing_event(registry: str, item: Listed) -> RegistryEvent:
    return RegistryEvent(
        "reconcile",
        None,
        "listed",
        "push",
        registry=registry,
        repository=item.repository,
        digest=item.digest,
        tag=item.tag,
        media_type=item.media_type,
    )


def _failure(registry: str, repository: str | None, error: Exception) -> Decision:
    message = error.message if isinstance(error, CipError) else str(error)
    event = RegistryEvent("reconcile", None, "list", "push", registry=registry)
    if repository is not None:
        event = RegistryEvent(
            "reconcile", None, "list", "push", registry=registry, repository=repository
        )
    return failed(event, f"cannot list {registry}/{repository or ''}: {message}")


async def reconcile(
    auditor: Auditor, pool: RegistryPool, *, concurrency: int = 16, tally: Tally | None = None
) -> ReconcileResult:
    """Every tag and digest under the manifests' destination registries, judged, registry by
    registry (`tally`, when given, counts them)."""
    limit = asyncio.Semaphore(concurrency)
    decisions: list[Decision] = []
    repositories = tags_only = 0
    registries = sorted(auditor.promises.destinations)
    tally = tally if tally is not None else Tally("registries", "judged")
    tally.expect(len(registries))
    for key in registries:
        tally.started()
        destinations = auditor.promises.destinations[key]
        client = pool.client(destinations[0])
        try:
            names = await _repositories(client, destinations)
        except (CipError, OSError) as error:
            decisions.append(_failure(key, None, error))
            tally.finished()
            continue
        listings = await asyncio.gather(*(_list(client, name, limit) for name in names))
        items: list[Listed] = []
        for name, listing in zip(names, listings, strict=True):
            if isinstance(listing, Exception):
                decisions.append(_failure(key, name, listing))
                continue
            found, with_digests = listing
            repositories += 1
            tags_only += not with_digests
            items.extend(found)
        # Tagged names first: judging them records which listed digests are images (no
        # children), so finding the parents of untagged digests reads only indexes.
        items.sort(key=lambda i: (i.repository, i.tag or "", i.digest))
        for batch in ([i for i in items if i.tag], [i for i in items if not i.tag]):
            events = (_listing_event(key, item) for item in batch)
            decisions.extend(await asyncio.gather(*(auditor.judge(e) for e in events)))
        tally.finished()
    return ReconcileResult(decisions, tuple(registries), repositories, tags_only)


async def _repositories(client: Registry, destinations: Sequence[RegistryName]) -> list[str]:
    """The catalog entries at or below any destination path on this registry."""
    paths = {d.path for d in destinations}
    found: list[str] = []
    async for name in client.catalog():
        if "" in paths or any(name == p or name.startswith(p + "/") for p in paths):
            found.append(name)
    return sorted(found)


async def _list(
    client: Registry, repository: str, limit: asyncio.Semaphore
) -> tuple[list[Listed], bool] | Exception:
    """Tags with their digests and, where the registry lists them, untagged digests too."""
    try:
        async with limit:
            try:
                listing = await client.list_tags(repository)
            except RegistryError as error:
                if error.status == 404:  # cataloged for a blob, no manifest yet
                    return [], True
                raise
        if listing.manifests is not None:
            items: list[Listed] = []
            for entry in listing.manifests.values():
                tags: Sequence[str | None] = entry.tags or (None,)
                items.extend(Listed(repository, entry.digest, t, entry.media_type) for t in tags)
            return items, True

        async def head(tag: str) -> Listed | None:
            async with limit:
                info = await client.head_manifest(repository, tag)
            return None if info is None else Listed(repository, info.digest, tag, info.media_type)

        heads = await asyncio.gather(*(head(tag) for tag in sorted(listing.tags)))
        return [item for item in heads if item is not None], False
    except (CipError, OSError) as error:
        return error
