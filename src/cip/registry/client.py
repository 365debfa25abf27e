"""The one small async protocol every image store implements.

Copying, inventory and signing are written against `Registry` only, so a Distribution registry
over HTTP and a folder of OCI image layouts are interchangeable (go-containerregistry's lesson:
tiny interfaces make copy glue). Repository names here are full paths below the host (or below
the `oci:` folder); the caller joins a manifest's registry path and image name.

Contracts shared by all implementations:
- every byte returned has been checked against the digest it was asked for or announced with
  (`DigestMismatchError` otherwise); blob streams check at the end, so consumers must not
  commit what they streamed until the iterator finished;
- "does it exist" questions (`head_manifest`, `blob_exists`) answer None/False for a 404
  and raise `RegistryError` for anything else;
- manifests are bytes plus media type, never re-serialised, so digests survive copies.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from cip.oci.media import Descriptor, ParsedManifest, parse_manifest, referrers_tag

DEFAULT_CHUNK_SIZE = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ManifestInfo:
    """What a HEAD tells: enough to decide whether a copy is needed."""

    digest: str
    media_type: str
    size: int


@dataclass(frozen=True, slots=True)
class Manifest:
    """A manifest as stored: exact bytes, the type it is, and the digest the bytes hash to."""

    data: bytes
    media_type: str
    digest: str

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, len(self.data))

    def info(self) -> ManifestInfo:
        return ManifestInfo(self.digest, self.media_type, len(self.data))

    def parse(self) -> ParsedManifest:
        return parse_manifest(self.data, self.media_type)


@dataclass(frozen=True, slots=True)
class ListedManifest:
    """One entry of Google's tags/list `manifest` map: a digest with its tags, for free."""

    digest: str
    tags: tuple[str, ...]
    media_type: str | None = None


@dataclass(frozen=True, slots=True)
class TagList:
    """Tags of a repository; `manifests` only when the registry volunteers digests (GCR, AR)."""

    repository: str
    tags: tuple[str, ...]
    manifests: Mapping[str, ListedManifest] | None = None


@dataclass(frozen=True, slots=True)
class UploadSession:
    """An open blob upload: an upload URL for HTTP, a scratch file for layouts.

    Returned by `start_upload`, and by `mount_blob` when the registry declined to mount, so the
    caller continues the same session instead of opening another.
    """

    repository: str
    location: str


@dataclass(frozen=True, slots=True)
class MountResult:
    mounted: bool
    session: UploadSession | None = None  # set when not mounted: continue uploading here


BlobSource = bytes | AsyncIterable[bytes]


@runtime_checkable
class Registry(Protocol):
    """An image store: a registry host, or a folder of OCI image layouts."""

    @property
    def name(self) -> str: ...

    async def ping(self) -> None: ...

    def catalog(self) -> AsyncIterator[str]: ...

    async def list_tags(self, repository: str) -> TagList: ...

    async def head_manifest(self, repository: str, reference: str) -> ManifestInfo | None: ...

    async def get_manifest(self, repository: str, reference: str) -> Manifest: ...

    async def put_manifest(
        self, repository: str, reference: str, data: bytes, media_type: str
    ) -> str: ...

    async def blob_exists(self, repository: str, digest: str) -> bool: ...

    def stream_blob(
        self, repository: str, digest: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> AsyncIterator[bytes]: ...

    async def mount_blob(self, repository: str, digest: str, source: str) -> MountResult: ...

    async def start_upload(self, repository: str) -> UploadSession: ...

    async def upload_blob(
        self,
        repository: str,
        digest: str,
        data: BlobSource,
        *,
        size: int | None = None,
        session: UploadSession | None = None,
    ) -> None: ...

    async def referrers(
        self, repository: str, digest: str, *, artifact_type: str | None = None
    ) -> list[Descriptor]: ...

    async def subject_referrers(self, repository: str, digest: str) -> list[Descriptor] | None:
        """The referrers the store finds by their `subject` (the OCI 1.1 referrers API, or a
        layout's index), leaving out the referrers tag's index; None where there is no such
        lookup (a registry without the API, which then costs one request per registry)."""
        ...

    async def aclose(self) -> None: ...


async def referrers_from_tag(registry: Registry, repository: str, digest: str) -> list[Descriptor]:
    """The index under the `<alg>-<hex>` tag: where registries without the OCI 1.1 referrers
    API keep referrers (distribution-spec "Referrers Tag Schema"); clients maintain it."""
    tag = referrers_tag(digest)
    if await registry.head_manifest(repository, tag) is None:
        return []
    return list((await registry.get_manifest(repository, tag)).parse().children)
