"""Reading and merging attached-artifact tags (`.sig`, `.att`) through the `Registry` protocol.

Distribution has no conditional PUT, so a tag that several writers append to is a
read-modify-write: the current layers are read, the union with the new ones is put in one PUT,
and nothing already there is dropped. Within a run, merges into one tag are serialised by a
lock per (registry, repository, tag); between concurrent runs an append may be lost, and the
next run, finding the digest unsigned, repairs it.

Blobs go in before the manifest that needs them: the payload blobs of new layers and the config.
A layer's blob comes from bytes in hand (a payload just signed) or from another repository: by
mount on the same registry, else read (payloads are small) and uploaded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from cip.errors import RegistryError
from cip.oci.media import Descriptor
from cip.registry.client import Manifest, Registry
from cip.trust.attached import MAX_LAYERS, SignerOf, build_manifest, merge_layers

MAX_ATTACHED_BLOB = 4 * 1024 * 1024  # payloads are JSON documents; refuse anything bigger


@dataclass(frozen=True, slots=True)
class BlobOrigin:
    """A repository holding a blob, to mount or read it from."""

    registry: Registry
    repository: str


@dataclass(frozen=True, slots=True)
class Incoming:
    """A layer to merge into a tag, with where its blob comes from."""

    descriptor: Descriptor
    blob: bytes | BlobOrigin


@dataclass
class MergeStats:
    manifests_written: int = 0
    layers_added: int = 0
    blobs_uploaded: int = 0
    blobs_mounted: int = 0


@dataclass(frozen=True, slots=True)
class MergeResult:
    written: bool
    layers: tuple[Descriptor, ...]  # what the tag holds now (or would, for a dry run)
    added: int = 0  # layers the merge added (or would add)


class _Unread:
    """Marks a tag whose current manifest the caller did not read: `merge` reads it."""


UNREAD = _Unread()


# Called with the layers the tag would hold after the merge; returns one more layer to add
# (cip's own signature), or None when those layers already carry it. Awaited, because making
# a keyless signature is network I/O.
OwnLayer = Callable[[Sequence[Descriptor]], Awaitable[Incoming | None]]


async def read_attached(registry: Registry, repository: str, tag: str) -> Manifest | None:
    """The manifest under an attached tag, or None when the tag does not exist."""
    if await registry.head_manifest(repository, tag) is None:
        return None
    try:
        return await registry.get_manifest(repository, tag)
    except RegistryError as error:
        if error.status == 404:
            return None  # deleted between the HEAD and the GET
        raise


async def read_blob(registry: Registry, repository: str, digest: str) -> bytes:
    chunks: list[bytes] = []
    total = 0
    async for chunk in registry.stream_blob(repository, digest):
        total += len(chunk)
        if total > MAX_ATTACHED_BLOB:
            raise RegistryError(
                f"attached blob larger than {MAX_ATTACHED_BLOB} bytes; refused",
                registry=registry.name,
                image=repository,
                digest=digest,
            )
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass
class AttachedWriter:
    """Merges layers into attached tags, one merge per tag at a time within a run."""

    stats: MergeStats = field(default_factory=MergeStats)
    _locks: dict[tuple[int, str, str], asyncio.Lock] = field(default_factory=dict)

    def lock(self, registry: Registry, repository: str, tag: str) -> asyncio.Lock:
        """The lock that serialises merges into one tag within a run."""
        key = (id(registry), repository, tag)
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    async def merge(
        self,
        registry: Registry,
        repository: str,
        tag: str,
        incoming: Sequence[Incoming],
        *,
        signer_of: SignerOf | None = None,
        own: OwnLayer | None = None,
        current: Manifest | _Unread | None = UNREAD,
        write: bool = True,
    ) -> MergeResult:
        """Put the union of the tag's layers, `incoming` and `own` under the tag, if it grew.

        `current`: the tag's manifest (None: absent) when the caller just read it from a
        listing and a GET, so no HEAD is spent; `write=False` only says what would be added.
        """
        async with self.lock(registry, repository, tag):
            if isinstance(current, _Unread):
                current = await read_attached(registry, repository, tag)
            existing = current.parse().layers if current is not None else ()
            merged, added = merge_layers(
                existing, [i.descriptor for i in incoming], signer_of=signer_of
            )
            blobs = {i.descriptor.digest: i.blob for i in incoming}
            mine = await own(merged) if own is not None else None
            if mine is not None:
                merged.append(mine.descriptor)
                added.append(mine.descriptor)
                blobs[mine.descriptor.digest] = mine.blob
            if not added or not write:
                return MergeResult(False, tuple(merged), len(added))
            if len(merged) > MAX_LAYERS:
                raise RegistryError(
                    f"{tag} would hold {len(merged)} layers, more than {MAX_LAYERS}; refused",
                    registry=registry.name,
                    image=repository,
                )
            built = build_manifest(merged)
            needed = {d.digest: (blobs[d.digest], d.size) for d in added}
            needed[built.config_descriptor.digest] = (built.config, len(built.config))
            await asyncio.gather(
                *(
                    self.ensure_blob(registry, repository, d, b, size=size)
                    for d, (b, size) in needed.items()
                )
            )
            await registry.put_manifest(
                repository, tag, built.manifest, "application/vnd.oci.image.manifest.v1+json"
            )
            self.stats.manifests_written += 1
            self.stats.layers_added += len(added)
            return MergeResult(True, tuple(merged), len(added))

    async def ensure_blob(
        self,
        registry: Registry,
        repository: str,
        digest: str,
        blob: bytes | BlobOrigin,
        *,
        size: int | None = None,
    ) -> None:
        """The blob in `repository`: already there, mounted, or uploaded. A blob from another
        registry of a known `size` above `MAX_ATTACHED_BLOB` (an SBOM) is streamed, not read."""
        if await registry.blob_exists(repository, digest):
            return
        session = None
        if isinstance(blob, BlobOrigin):
            if blob.registry is registry and blob.repository != repository:
                mount = await registry.mount_blob(repository, digest, blob.repository)
                if mount.mounted:
                    self.stats.blobs_mounted += 1
                    return
                session = mount.session
            if size is not None and size > MAX_ATTACHED_BLOB:
                stream = blob.registry.stream_blob(blob.repository, digest)
                await registry.upload_blob(repository, digest, stream, size=size, session=session)
                self.stats.blobs_uploaded += 1
                return
            data = await read_blob(blob.registry, blob.repository, digest)
        else:
            data = blob
        await registry.upload_blob(repository, digest, data, session=session)
        self.stats.blobs_uploaded += 1
