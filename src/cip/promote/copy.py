"""Copy one image graph between repositories, digest for digest, in an order that is always safe.

Blobs before the manifest needing them, children before their index, the manifest by digest
before any tag: whenever cip is killed, no tag points at incomplete content, and a rerun finds
what is there and finishes the rest. Work is shared within a run: each blob crosses the wire at
most once per destination repository, and on one host it is mounted instead of streamed (from
the source, or from another repository that received it earlier in the run). Small blobs are
read from the source once and fanned out to every destination from memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar, cast

from cip.errors import RegistryError
from cip.oci.media import Descriptor
from cip.promote.fanout import Broadcast
from cip.registry.client import Manifest, Registry, UploadSession

T = TypeVar("T")
SMALL_BLOB = 1024 * 1024  # read once, kept for the fan-out to other destinations
# Finished tasks holding manifest or blob bytes, dropped between batches; a later batch that
# needs one again (a child shared by two indexes) reads or writes it again, idempotently.
HOLDS_CONTENT = ("src", "src-blob", "manifest")
UPLOAD_ATTEMPTS = 5  # whole uploads restarted after a retryable failure


class TagMoveRefused(RegistryError):
    """The destination tag points at another digest now; tags never move."""

    def __init__(self, tag: str, current: str, wanted: str, *, registry: str, image: str) -> None:
        super().__init__(
            f"tag {tag} now points at {current}; refused to move it to {wanted}",
            registry=registry,
            image=image,
            digest=wanted,
        )
        self.tag = tag
        self.current = current


@dataclass
class CopyStats:
    manifests_written: int = 0
    tags_written: int = 0
    blobs_present: int = 0
    blobs_mounted: int = 0
    blobs_streamed: int = 0
    bytes_streamed: int = 0
    foreign_layers_skipped: int = 0


@dataclass(frozen=True, slots=True)
class BlobMove:
    """One blob from a source repository to a destination repository."""

    src: Registry
    src_repo: str
    dst: Registry
    dst_repo: str
    blob: Descriptor

    @property
    def host_key(self) -> tuple[int, str]:
        """The blob on the destination host, whatever the repository."""
        return (id(self.dst), self.blob.digest)


def _key(registry: Registry, repository: str, digest: str) -> tuple[int, str, str]:
    return (id(registry), repository, digest)


class ImageCopier:
    """Shares in-flight work: two edges needing the same blob or manifest await one task."""

    def __init__(self, *, include_foreign_layers: bool = False) -> None:
        self.stats = CopyStats()
        self._include_foreign = include_foreign_layers
        # Work kept for the whole run (blobs and mounts: a blob crosses once per host), and work
        # whose result holds content (manifests, small blobs), dropped between batches. Apart,
        # so dropping scans only the second, not every task of the run at every batch.
        self._tasks: dict[tuple[str, int, str, str], asyncio.Task[object]] = {}
        self._content_tasks: dict[tuple[str, int, str, str], asyncio.Task[object]] = {}
        self._blob_homes: dict[tuple[int, str], str] = {}  # (dst, digest) -> repo holding it
        self._broadcasts: dict[tuple[int, str, str], Broadcast] = {}
        self._fresh: set[tuple[int, str]] = set()  # (dst, repo) absent when planned
        self._uploading: dict[tuple[int, str], asyncio.Future[str | None]] = {}

    def forget_cached_content(self) -> None:
        """Drop source manifests and small blobs kept for fan-out (call between batches).

        Only finished reads are dropped; a batch still running that needs one again reads it
        again, which costs a request, never correctness. Memory stays bounded by the batches in
        flight instead of growing with every small blob of the run.
        """
        self._broadcasts = {k: b for k, b in self._broadcasts.items() if not b.started}
        self._content_tasks = {k: t for k, t in self._content_tasks.items() if not t.done()}

    async def _once(self, key: tuple[str, int, str, str], work: Callable[[], Awaitable[T]]) -> T:
        tasks = self._content_tasks if key[0] in HOLDS_CONTENT else self._tasks
        task = tasks.get(key)
        if task is None:
            task = asyncio.ensure_future(work())
            tasks[key] = task
        # shield: one waiter being cancelled must not cancel the work others wait for.
        result = await asyncio.shield(task)
        return cast(T, result)

    async def source_manifest(self, src: Registry, repository: str, digest: str) -> Manifest:
        return await self._once(
            ("src", id(src), repository, digest), lambda: src.get_manifest(repository, digest)
        )

    def mark_fresh(self, dst: Registry, dst_repo: str) -> None:
        """The repository did not exist when planned: nothing in it needs a HEAD first."""
        self._fresh.add((id(dst), dst_repo))

    async def copy(
        self,
        src: Registry,
        src_repo: str,
        dst: Registry,
        dst_repo: str,
        digest: str,
        *,
        known_absent: bool = False,
    ) -> Manifest:
        """Make `dst_repo@digest` exist with all it references; returns the manifest.

        `known_absent`: the plan just found the digest missing, so no HEAD is spent on it.
        """
        return await self._once(
            ("manifest", id(dst), dst_repo, digest),
            lambda: self._copy_manifest(src, src_repo, dst, dst_repo, digest, known_absent),
        )

    async def _copy_manifest(
        self,
        src: Registry,
        src_repo: str,
        dst: Registry,
        dst_repo: str,
        digest: str,
        known_absent: bool,
    ) -> Manifest:
        manifest = await self.source_manifest(src, src_repo, digest)
        fresh = (id(dst), dst_repo) in self._fresh
        if not (known_absent or fresh) and await dst.head_manifest(dst_repo, digest) is not None:
            return manifest  # a registry stores a manifest only once what it references exists
        parsed = manifest.parse()
        if parsed.is_index:
            # Distribution 2.8.2 refuses an index whose children are not in the repository.
            await asyncio.gather(
                *(self.copy(src, src_repo, dst, dst_repo, c.digest) for c in parsed.children)
            )
        else:
            self.stats.foreign_layers_skipped += (
                0 if self._include_foreign else len(parsed.foreign_layers)
            )
            await asyncio.gather(
                *(
                    self._copy_blob_once(BlobMove(src, src_repo, dst, dst_repo, blob))
                    for blob in parsed.blobs(include_foreign=self._include_foreign)
                )
            )
        await dst.put_manifest(dst_repo, digest, manifest.data, manifest.media_type)
        self.stats.manifests_written += 1
        return manifest

    async def copy_blobs(
        self,
        src: Registry,
        src_repo: str,
        dst: Registry,
        dst_repo: str,
        blobs: Sequence[Descriptor],
    ) -> None:
        """Make these blobs exist in `dst_repo` (mounted, or streamed), without a manifest:
        for layers merged into an attached tag whose manifest is rebuilt there."""
        await asyncio.gather(
            *(self._copy_blob_once(BlobMove(src, src_repo, dst, dst_repo, b)) for b in blobs)
        )

    async def _copy_blob_once(self, move: BlobMove) -> None:
        await self._once(
            ("blob", id(move.dst), move.dst_repo, move.blob.digest), lambda: self._copy_blob(move)
        )

    def _arrived(self, move: BlobMove) -> None:
        """Remember a repository of the destination host that holds the blob, to mount from."""
        self._blob_homes.setdefault(move.host_key, move.dst_repo)

    async def _copy_blob(self, move: BlobMove) -> None:
        dst, dst_repo, digest = move.dst, move.dst_repo, move.blob.digest
        session = None
        home = move.src_repo if dst is move.src else self._blob_homes.get(move.host_key)
        uploading = self._uploading.get(move.host_key)
        if home is None and uploading is not None:
            # Another repository of this host is receiving the blob right now: wait, then
            # mount from it, so the blob crosses the wire once per host (and a host never
            # holds several readers of one shared source stream).
            home = await asyncio.shield(uploading)
        # With a known home on the same host, mount first: it answers 201 whether or not the
        # blob was already linked here, so a HEAD before it would be one request per blob spent
        # for nothing (measured in BENCHMARKS.md case 5).
        fresh = (id(dst), dst_repo) in self._fresh
        if (
            (home is None or home == dst_repo)
            and not fresh
            and await dst.blob_exists(dst_repo, digest)
        ):
            self.stats.blobs_present += 1
            self._arrived(move)
            return
        if home is not None and home != dst_repo:
            mount = await dst.mount_blob(dst_repo, digest, home)
            if mount.mounted:
                self.stats.blobs_mounted += 1
                self._arrived(move)
                return
            session = mount.session  # declined: continue this upload session instead
        done: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._uploading.setdefault(move.host_key, done)
        try:
            await self._upload(move, session)
        finally:
            if self._uploading.get(move.host_key) is done:
                del self._uploading[move.host_key]
            # Waiters mount from here, or upload themselves when this failed (None).
            done.set_result(self._blob_homes.get(move.host_key))

    async def _upload(self, move: BlobMove, session: UploadSession | None) -> None:
        blob = move.blob
        for attempt in range(UPLOAD_ATTEMPTS):
            try:
                if blob.size <= SMALL_BLOB:
                    data = await self._small_blob(move.src, move.src_repo, blob.digest)
                    await move.dst.upload_blob(move.dst_repo, blob.digest, data, session=session)
                else:
                    await self._upload_large(move, session, shared=attempt == 0)
                break
            except RegistryError as error:
                # The answer to the final PUT may be lost after the registry stored the blob.
                if await move.dst.blob_exists(move.dst_repo, blob.digest):
                    break
                # A streamed body is never replayed by the transport: restart the upload.
                if not error.retryable or attempt + 1 == UPLOAD_ATTEMPTS:
                    raise
                session = None
        self.stats.blobs_streamed += 1
        self.stats.bytes_streamed += blob.size
        self._arrived(move)

    async def _upload_large(
        self, move: BlobMove, session: UploadSession | None, *, shared: bool
    ) -> None:
        """Stream from the source, sharing one read with other destinations when possible."""
        src, src_repo, digest = move.src, move.src_repo, move.blob.digest
        subscriber = None
        if shared:
            key = _key(src, src_repo, digest)
            broadcast = self._broadcasts.get(key)
            if broadcast is None or broadcast.started:
                broadcast = Broadcast(lambda: src.stream_blob(src_repo, digest))
                self._broadcasts[key] = broadcast
            subscriber = broadcast.subscribe()
        try:
            stream = subscriber.chunks() if subscriber else src.stream_blob(src_repo, digest)
            await move.dst.upload_blob(
                move.dst_repo, digest, stream, size=move.blob.size, session=session
            )
        finally:
            if subscriber is not None:
                subscriber.close()

    async def _small_blob(self, src: Registry, repository: str, digest: str) -> bytes:
        """Read once per batch, then served from memory to every other destination."""

        async def fetch() -> bytes:
            return b"".join([chunk async for chunk in src.stream_blob(repository, digest)])

        return await self._once(("src-blob", id(src), repository, digest), fetch)

    async def tag(
        self,
        dst: Registry,
        dst_repo: str,
        tag: str,
        manifest: Manifest,
        *,
        known_absent: bool = False,
    ) -> bool:
        """Point `tag` at the manifest unless it already does; refuse to move it.

        Re-checked right before the write (another run may have written the tag since
        planning), unless the caller just saw it absent. Returns whether a write happened.
        """
        current = None if known_absent else await dst.head_manifest(dst_repo, tag)
        if current is not None:
            if current.digest == manifest.digest:
                return False
            raise TagMoveRefused(
                tag, current.digest, manifest.digest, registry=dst.name, image=dst_repo
            )
        await dst.put_manifest(dst_repo, tag, manifest.data, manifest.media_type)
        self.stats.tags_written += 1
        return True
