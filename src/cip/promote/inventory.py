"""Read, concurrently, exactly the registry facts a plan needs.

Destinations first: one tag listing per destination repository, then a HEAD per wanted tag
that exists and a HEAD per wanted digest no tag accounts for; both are skipped when the listing
already carries every digest with its tags, as Google's registries do. Sources only afterwards, and only for digests
some destination lacks. So a run where everything is present costs at most one request per
destination tag plus one per destination repository, and on Google's registries one request per
destination repository.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from sys import intern
from typing import TypeVar

from cip.errors import RegistryError
from cip.model.inventory import Inventory, RepoKey, RepositoryFacts
from cip.model.refs import Registry as RegistryName
from cip.plan.edges import EdgeGroup
from cip.plan.planner import WantedFacts, wanted_facts
from cip.promote.tally import Tally
from cip.registry.client import ManifestInfo, Registry
from cip.registry.pool import RegistryPool
from cip.trust.attached import attested_digests, referred_digests, signed_digests

T = TypeVar("T")
ProgressCallback = Callable[[int], None]  # called with the number of requests just finished


def _registries(groups: Sequence[EdgeGroup]) -> dict[str, RegistryName]:
    found: dict[str, RegistryName] = {}
    for group in groups:
        found.setdefault(group.source.name, group.source)
        for destination in group.destinations:
            found.setdefault(destination.name, destination)
    return found


class InventoryReader:
    def __init__(
        self,
        pool: RegistryPool,
        *,
        concurrency: int = 32,
        progress: ProgressCallback | None = None,
        tally: Tally | None = None,
    ) -> None:
        """`tally`, when given, counts destination repositories read (`cip verify`)."""
        self._pool = pool
        self._tally = tally
        self._limit = asyncio.Semaphore(concurrency)
        self._workers = concurrency
        self._seen: dict[int, RepositoryFacts] = {}  # content hash -> facts held (`_shared`)
        self._progress = progress

    async def _call(self, request: Awaitable[T]) -> T:
        async with self._limit:
            try:
                return await request
            finally:
                if self._progress is not None:
                    self._progress(1)

    async def _heads(
        self, client: Registry, repository: str, references: Sequence[str]
    ) -> list[ManifestInfo | None]:
        return await asyncio.gather(
            *(self._call(client.head_manifest(repository, ref)) for ref in references)
        )

    async def read(self, groups: Sequence[EdgeGroup], *, read_sources: bool = True) -> Inventory:
        """Destinations, then (with `read_sources`) sources for the digests some lack."""
        registries = _registries(groups)
        wanted = wanted_facts(groups)
        inventory = Inventory()
        if self._tally is not None:
            self._tally.expect(len(wanted))
        await self._each(
            self._read_destination(registries[key[0]], key[1], w, inventory, key)
            for key, w in wanted.items()
        )
        if not read_sources:
            return inventory
        missing: dict[RepoKey, set[str]] = {}
        for key, w in wanted.items():
            facts = inventory.facts(*key)
            if facts.error is not None or w.source is None:
                continue
            for digest in w.digests:
                if not facts.has_digest(digest):
                    missing.setdefault(w.source, set()).add(digest)
        await self._each(
            self._read_source(registries[key[0]], key[1], digests, inventory.facts(*key))
            for key, digests in missing.items()
        )
        return inventory

    async def _each(self, coroutines: Iterator[Coroutine[None, None, None]]) -> None:
        """Run `coroutines` with as many alive at once as requests may be in flight.

        Created lazily by a few workers rather than all gathered up front: a task per
        destination repository (9,834 for registry.k8s.io) costs memory and scheduling for
        nothing while the request limit lets only `concurrency` of them work.
        """

        async def worker() -> None:
            for coroutine in coroutines:
                await coroutine

        await asyncio.gather(*(worker() for _ in range(self._workers)))

    def _shared(self, facts: RepositoryFacts) -> RepositoryFacts:
        """Equal facts read before for another repository, else `facts` (kept for the next).

        registry.k8s.io's 22 mirrors hold the same repositories: their facts are held once,
        not 22 times (about 200 MB for the corpus with signatures). Facts are not changed
        after their repository was read, so sharing them is safe; equality is checked, the
        hash only finds the candidate.
        """
        if facts.error is not None:
            return facts
        key = hash((frozenset(facts.tags.items()), frozenset(facts.digests), facts.missing))
        found = self._seen.get(key)
        if found is not None and (
            found.tags == facts.tags
            and found.digests == facts.digests
            and found.media_types == facts.media_types
            and found.signed == facts.signed
            and found.attested == facts.attested
            and found.referred == facts.referred
            and found.missing == facts.missing
            and found.error is None
        ):
            return found
        self._seen.setdefault(key, facts)
        return facts

    async def _read_destination(
        self,
        registry: RegistryName,
        image: str,
        wanted: WantedFacts,
        inventory: Inventory,
        key: RepoKey,
    ) -> None:
        facts = RepositoryFacts()
        if self._tally is not None:
            self._tally.started()
        await self._fill_destination(registry, image, wanted, facts)
        inventory.repositories[key] = self._shared(facts)
        if self._tally is not None:
            self._tally.finished()

    async def _fill_destination(
        self, registry: RegistryName, image: str, wanted: WantedFacts, facts: RepositoryFacts
    ) -> None:
        client, repository = self._pool.locate(registry, image)
        try:
            try:
                listing = await self._call(client.list_tags(repository))
                listed_tags = set(listing.tags)
                facts.signed = signed_digests(listed_tags)
                facts.attested = attested_digests(listed_tags)
                facts.referred = referred_digests(listed_tags)
            except RegistryError as error:
                if error.status != 404:
                    raise
                listing, listed_tags = None, set()  # a repository nobody pushed to yet
                facts.missing = True
            if listing is not None and listing.manifests is not None:
                # Interned: each listing decodes its own copies of every digest, tag and media
                # type; repositories listing the same ones then share them.
                for entry in listing.manifests.values():
                    digest = intern(entry.digest)
                    facts.digests[digest] = True
                    if entry.media_type:
                        facts.media_types[digest] = intern(entry.media_type)
                    for tag in entry.tags:
                        facts.tags[intern(tag)] = digest
                # Google's listing names every manifest, untagged ones too: what it lacks is
                # absent, no HEAD needed (upstream's promoter reads GCR this way alone).
                for digest in wanted.digests:
                    facts.digests.setdefault(digest, False)
            else:
                to_resolve = sorted(wanted.tags & listed_tags)
                heads = await self._heads(client, repository, to_resolve)
                for tag, info in zip(to_resolve, heads, strict=True):
                    if info is not None:  # else deleted since the listing: absent
                        digest = intern(info.digest)
                        facts.tags[tag] = digest
                        facts.digests[digest] = True  # a tag on it: present
                        facts.media_types[digest] = intern(info.media_type)
            if facts.missing:
                facts.digests.update(dict.fromkeys(wanted.digests, False))
            unknown = sorted(d for d in wanted.digests if facts.has_digest(d) is None)
            found = await self._heads(client, repository, unknown)
            for digest, info in zip(unknown, found, strict=True):
                facts.digests[digest] = info is not None
                if info is not None:
                    facts.media_types[digest] = intern(info.media_type)
        except RegistryError as error:
            facts.error, facts.unreachable = error.message, error.unreachable
        except OSError as error:  # an oci: layout that cannot be read
            facts.error = f"{error.filename}: {error.strerror or error}"

    async def _read_source(
        self, registry: RegistryName, image: str, digests: set[str], facts: RepositoryFacts
    ) -> None:
        client, repository = self._pool.locate(registry, image)
        ordered = sorted(digests)
        try:
            found = await self._heads(client, repository, ordered)
        except RegistryError as error:
            facts.error, facts.unreachable = error.message, error.unreachable
            return
        except OSError as error:  # an oci: layout that cannot be read
            facts.error = f"{error.filename}: {error.strerror or error}"
            return
        for digest, info in zip(ordered, found, strict=True):
            facts.digests[digest] = info is not None
            if info is not None:
                facts.media_types[digest] = info.media_type
