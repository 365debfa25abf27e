"""`cip replicate-signatures`: what is attached on each primary, merged into every mirror.

kpromo leaves mirrors to this periodic job. It reads one tag listing per repository and
registry, never a HEAD per digest and mirror: every cosign-scheme tag on the primary
(`sha256-<hex>.sig`, `.att`, `.sbom`, and the referrers index `sha256-<hex>`) is opened once,
and a mirror's copy is opened only where the mirror lists the tag too. A `.sig`/`.att`/`.sbom`
gets the union of layers; a referrers index gets the union of its descriptors, each referrer
manifest copied (blobs first) before the index that names it. A dry run writes nothing, and a
second run after a `--confirm` one finds nothing to merge.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from cip.errors import CipError, RegistryError
from cip.model.refs import Registry as RegistryName
from cip.oci.media import OCI_INDEX
from cip.plan.edges import EdgeGroup
from cip.plan.planner import SigningPolicy
from cip.promote.copy import ImageCopier
from cip.promote.tally import Tally
from cip.registry.client import Manifest, Registry
from cip.registry.pool import RegistryPool
from cip.trust.attached import build_index, merge_index_entries, parse_attached_tag
from cip.trust.store import AttachedWriter, BlobOrigin, Incoming


@dataclass(frozen=True, slots=True)
class TagMerge:
    registry: str
    repository: str
    tag: str
    source: str  # the primary registry it came from
    added: int  # layers or index descriptors added (or that would be)


@dataclass(frozen=True, slots=True)
class TagFailure:
    registry: str
    repository: str
    tag: str
    error: str


@dataclass
class ReplicationResult:
    tags_seen: int = 0
    merges: list[TagMerge] = field(default_factory=list)
    failures: list[TagFailure] = field(default_factory=list)


async def _listed(client: Registry, repository: str) -> set[str]:
    try:
        return set((await client.list_tags(repository)).tags)
    except RegistryError as error:
        if error.status == 404:
            return set()  # Distribution 2.8.2: NAME_UNKNOWN until the repository's first push
        raise


def _pairs(
    groups: Sequence[EdgeGroup], policy: SigningPolicy
) -> dict[tuple[str, str], tuple[RegistryName, dict[str, RegistryName]]]:
    """(primary, image) -> the primary and its mirrors, over every manifest."""
    pairs: dict[tuple[str, str], tuple[RegistryName, dict[str, RegistryName]]] = {}
    for group in groups:
        primary = policy.primary_of(group)
        _, mirrors = pairs.setdefault((primary.name, group.image), (primary, {}))
        for destination in group.destinations:
            if destination != primary:
                mirrors.setdefault(destination.name, destination)
    return pairs


@dataclass
class _Replicator:
    pool: RegistryPool
    confirm: bool
    limit: asyncio.Semaphore
    result: ReplicationResult = field(default_factory=ReplicationResult)
    writer: AttachedWriter = field(default_factory=AttachedWriter)
    copier: ImageCopier = field(default_factory=ImageCopier)

    async def image(self, primary: RegistryName, mirrors: list[RegistryName], image: str) -> None:
        src, src_repo = self.pool.locate(primary, image)
        try:
            tags = sorted(t for t in await _listed(src, src_repo) if parse_attached_tag(t))
        except (CipError, OSError) as error:
            self._fail(primary.name, src_repo, "(tag listing)", error)
            return
        self.result.tags_seen += len(tags)
        sources: dict[str, asyncio.Task[Manifest]] = {}

        def source(tag: str) -> asyncio.Task[Manifest]:
            if tag not in sources:
                sources[tag] = asyncio.ensure_future(src.get_manifest(src_repo, tag))
            return sources[tag]

        async def mirror(target: RegistryName) -> None:
            dst, dst_repo = self.pool.locate(target, image)
            try:
                present = await _listed(dst, dst_repo)
            except (CipError, OSError) as error:
                self._fail(target.name, dst_repo, "(tag listing)", error)
                return
            for tag in tags:
                try:
                    async with self.limit:
                        ours = await dst.get_manifest(dst_repo, tag) if tag in present else None
                        added = await self._merge(tag, await source(tag), ours, src, src_repo,
                                                  dst, dst_repo)  # fmt: skip
                except (CipError, OSError) as error:
                    self._fail(target.name, dst_repo, tag, error)
                    continue
                if added:
                    self.result.merges.append(
                        TagMerge(target.name, dst_repo, tag, primary.name, added)
                    )

        await asyncio.gather(*(mirror(m) for m in mirrors))

    async def _merge(
        self,
        tag: str,
        theirs: Manifest,
        ours: Manifest | None,
        src: Registry,
        src_repo: str,
        dst: Registry,
        dst_repo: str,
    ) -> int:
        parsed = theirs.parse()
        if parsed.is_index:
            existing = ours.parse().children if ours is not None else ()
            merged, added = merge_index_entries(existing, parsed.children)
            if added and self.confirm:
                # Referrers before the index that names them (children before their index).
                await asyncio.gather(
                    *(self.copier.copy(src, src_repo, dst, dst_repo, d.digest) for d in added)
                )
                await dst.put_manifest(dst_repo, tag, build_index(merged), OCI_INDEX)
            return len(added)
        origin = BlobOrigin(src, src_repo)
        outcome = await self.writer.merge(
            dst,
            dst_repo,
            tag,
            [Incoming(layer, origin) for layer in parsed.layers],
            current=ours,
            write=self.confirm,
        )
        return outcome.added

    def _fail(self, registry: str, repository: str, tag: str, error: Exception) -> None:
        message = error.message if isinstance(error, CipError) else str(error)
        self.result.failures.append(TagFailure(registry, repository, tag, message))


async def replicate_attached(
    groups: Sequence[EdgeGroup],
    pool: RegistryPool,
    policy: SigningPolicy,
    *,
    confirm: bool,
    max_copies: int = 50,
    concurrency: int = 32,
    tally: Tally | None = None,
) -> ReplicationResult:
    """`concurrency` images are replicated at once (`--concurrency`), each to all its mirrors;
    `tally`, when given, counts the images done."""
    replicator = _Replicator(pool, confirm, asyncio.Semaphore(max_copies))
    work = [
        (primary, list(mirrors.values()), image)
        for (_, image), (primary, mirrors) in _pairs(groups, policy).items()
        if mirrors
    ]
    if tally is not None:
        tally.expect(len(work))
    at_once = asyncio.Semaphore(concurrency)

    async def one(primary: RegistryName, mirrors: list[RegistryName], image: str) -> None:
        async with at_once:
            if tally is not None:
                tally.started()
            await replicator.image(primary, mirrors, image)
            if tally is not None:
                tally.finished()

    await asyncio.gather(*(one(*item) for item in work))
    result = replicator.result
    result.merges.sort(key=lambda m: (m.repository, m.tag, m.registry))
    result.failures.sort(key=lambda f: (f.repository, f.tag, f.registry))
    return result
