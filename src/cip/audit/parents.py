"""Finding the index a child image belongs to, without walking a registry.

Upstream's auditor read the whole source registry to find parents, which exhausted quotas and
raised false alarms (issue 402). Here a child is looked for in three places, cheapest first:
the manifests (done by the judge), index manifests already seen (this cache: an index's
children never change, since a digest names its content), and only then the indexes the
manifests promote to that one repository, read once each, from production or, when not there
yet (children are pushed before their index), from the source the manifests name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from cip.audit.promises import Listing, Promises, RepositoryPromise
from cip.errors import CipError, RegistryError
from cip.oci.media import ParsedManifest, UnsupportedManifestError
from cip.registry.client import Registry
from cip.registry.pool import RegistryPool


class IndexCache:
    """Children of every manifest read or announced so far, and the reverse map."""

    def __init__(self) -> None:
        self._children: dict[str, tuple[str, ...]] = {}
        self._parents: dict[str, set[str]] = {}

    def __contains__(self, digest: str) -> bool:
        return digest in self._children

    def __len__(self) -> int:
        return len(self._children)

    def remember(self, digest: str, children: Iterable[str]) -> None:
        """`digest`'s children (none for an image); later calls for it change nothing."""
        if digest in self._children:
            return
        self._children[digest] = tuple(children)
        for child in self._children[digest]:
            self._parents.setdefault(child, set()).add(digest)

    def parents_of(self, child: str) -> set[str]:
        return self._parents.get(child, set())


class ManifestReader:
    """Reads what the judge needs from registries: each promoted digest once, with bounded
    concurrency, and nothing it can decide without."""

    def __init__(
        self, pool: RegistryPool, promises: Promises, cache: IndexCache, concurrency: int = 8
    ) -> None:
        self.pool = pool
        self.promises = promises
        self.cache = cache
        self._limit = asyncio.Semaphore(concurrency)
        self._reading: dict[str, asyncio.Task[None]] = {}

    async def read_promoted(
        self, registry: str, repository: str, promise: RepositoryPromise
    ) -> None:
        """Read every digest promoted to the repository that the cache does not know yet.

        Raises the first registry error when a digest could be read nowhere; digests that are
        in neither production nor the source are skipped (nothing to learn from them).
        """
        wanted = sorted(d for d in promise.digests if d not in self.cache)
        tasks = [self._once(registry, repository, d, promise.digests[d]) for d in wanted]
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    def _once(
        self, registry: str, repository: str, digest: str, listing: Listing
    ) -> asyncio.Task[None]:
        task = self._reading.get(digest)
        if task is None or (task.done() and task.exception() is not None):
            task = asyncio.ensure_future(self._read(registry, repository, digest, listing))
            self._reading[digest] = task
            task.add_done_callback(lambda done: self._forget(digest, done))
        return task

    def _forget(self, digest: str, task: asyncio.Task[None]) -> None:
        if self._reading.get(digest) is task:
            del self._reading[digest]

    async def _read(self, registry: str, repository: str, digest: str, listing: Listing) -> None:
        parsed = await self.manifest(registry, repository, digest)
        if parsed is None:
            source = self.pool.client(listing.source)
            parsed = await self._get(source, listing.source.repository(listing.image), digest)
        if parsed is not None:
            self.cache.remember(digest, (child.digest for child in parsed.children))

    async def manifest(self, registry: str, repository: str, digest: str) -> ParsedManifest | None:
        """The manifest `digest` in a production repository; None when it is not there."""
        name = self.promises.registry_name(registry)
        if name is None:
            return None
        parsed = await self._get(self.pool.client(name), repository, digest)
        if parsed is not None:
            self.cache.remember(digest, (child.digest for child in parsed.children))
        return parsed

    async def resolve_tag(self, registry: str, repository: str, tag: str) -> str | None:
        """The digest a production tag points at now; None when the tag is gone."""
        name = self.promises.registry_name(registry)
        if name is None:
            return None
        async with self._limit:
            try:
                info = await self.pool.client(name).head_manifest(repository, tag)
            except OSError as error:  # an oci: layout that cannot be read
                raise CipError(f"{error.filename}: {error.strerror or error}") from error
        return None if info is None else info.digest

    async def _get(self, client: Registry, repository: str, digest: str) -> ParsedManifest | None:
        async with self._limit:
            try:
                manifest = await client.get_manifest(repository, digest)
            except RegistryError as error:
                if error.status == 404:
                    return None
                raise
            except OSError as error:  # an oci: layout that cannot be read
                raise CipError(f"{error.filename}: {error.strerror or error}") from error
        try:
            return manifest.parse()
        except UnsupportedManifestError:
            # Schema1 or malformed: it has no children and no subject the judge could use.
            return ParsedManifest(manifest.media_type, None, (), (), None, None, {})
