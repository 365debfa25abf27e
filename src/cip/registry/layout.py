"""The Registry protocol over a folder of OCI image layouts (`oci:DIR`).

Each image name is its own layout, `DIR/<name>/{oci-layout,index.json,blobs/<alg>/<hex>}`
(image-spec image-layout.md), so `skopeo inspect oci:DIR/<name>:<tag>` and other OCI tools read
what cip writes. Tags are `org.opencontainers.image.ref.name` annotations in index.json. This is
the embedded default: promotion between folders needs no server at all.

Writes are atomic (scratch file, then rename) and index.json updates are serialised per layout
within one process; two cip processes writing one layout at once are not coordinated.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, BinaryIO

from cip.errors import DigestMismatchError, RegistryError
from cip.model.refs import is_repository_path, is_tag
from cip.oci import media
from cip.oci.media import Descriptor
from cip.registry.client import (
    DEFAULT_CHUNK_SIZE,
    BlobSource,
    Manifest,
    ManifestInfo,
    MountResult,
    TagList,
    UploadSession,
    referrers_from_tag,
)

REF_NAME = "org.opencontainers.image.ref.name"
LAYOUT_FILE = "oci-layout"
_LAYOUT_VERSION = b'{"imageLayoutVersion":"1.0.0"}'
_UPLOADS = ".uploads"


class LayoutRegistry:
    """`oci:DIR`: repositories are image names below DIR."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def name(self) -> str:
        return f"oci:{self.root}"

    async def aclose(self) -> None:
        return None

    # -- paths and index.json ---------------------------------------------------------------

    def _ctx(self, repository: str | None, digest: str | None = None) -> media.ErrorContext:
        return {"registry": self.name, "image": repository, "digest": digest}

    def _dir(self, repository: str) -> Path:
        parts = repository.split("/")
        if not is_repository_path(repository):
            raise RegistryError(
                f"invalid image name for an OCI layout: {repository!r}", **self._ctx(repository)
            )
        folder = self.root.joinpath(*parts)
        # Nested names are nested folders: `a/blobs` and `a` cannot both be layouts.
        clash = [
            i
            for i in range(1, len(parts))
            if parts[i] == "blobs" and (self.root.joinpath(*parts[:i]) / LAYOUT_FILE).exists()
        ] or (folder / "blobs" / LAYOUT_FILE).exists()
        if clash:
            raise RegistryError(
                f"image name {repository!r} clashes with the blobs folder of another layout",
                **self._ctx(repository),
            )
        return folder

    def _blob_path(self, repository: str, digest: str) -> Path:
        algorithm, _, encoded = digest.partition(":")
        if algorithm not in ("sha256", "sha512") or not encoded.isalnum():
            raise RegistryError(f"invalid digest {digest!r}", **self._ctx(repository))
        return self._dir(repository) / "blobs" / algorithm / encoded

    def _read_index(self, repository: str) -> dict[str, Any]:
        path = self._dir(repository) / "index.json"
        try:
            index = json.loads(path.read_bytes())
        except FileNotFoundError:
            return {"schemaVersion": 2, "mediaType": media.OCI_INDEX, "manifests": []}
        except ValueError as exc:
            raise RegistryError(
                f"{path}: invalid index.json: {exc}", **self._ctx(repository)
            ) from exc
        if not isinstance(index, dict) or not isinstance(index.get("manifests", []), list):
            raise RegistryError(f"{path}: invalid index.json", **self._ctx(repository))
        index.setdefault("manifests", [])
        return index

    def _write_index(self, repository: str, index: dict[str, Any]) -> None:
        folder = self._dir(repository)
        folder.mkdir(parents=True, exist_ok=True)
        layout = folder / LAYOUT_FILE
        if not layout.exists():
            _atomic_write(layout, _LAYOUT_VERSION)
        _atomic_write(folder / "index.json", json.dumps(index, indent=2).encode())

    def _lock(self, repository: str) -> asyncio.Lock:
        return self._locks.setdefault(repository, asyncio.Lock())

    def _entries(self, repository: str) -> list[Descriptor]:
        where = f"{self._dir(repository)}/index.json"
        raw = self._read_index(repository)["manifests"]
        return [Descriptor.from_json(d, where=where) for d in raw]

    # -- discovery --------------------------------------------------------------------------

    async def ping(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise RegistryError(f"{self.root} is not a directory", **self._ctx(None))

    async def catalog(self) -> AsyncIterator[str]:
        found: list[str] = []
        for folder, dirs, files in os.walk(self.root):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "blobs")
            if LAYOUT_FILE in files and folder != str(self.root):
                found.append(Path(folder).relative_to(self.root).as_posix())
        for name in sorted(found):
            yield name

    async def list_tags(self, repository: str) -> TagList:
        if not (self._dir(repository) / LAYOUT_FILE).exists():
            raise RegistryError(
                f"no OCI layout for {repository}", status=404, oci_code="NAME_UNKNOWN",
                **self._ctx(repository),
            )  # fmt: skip
        tags = [d.annotations.get(REF_NAME, "") for d in self._entries(repository)]
        return TagList(repository, tuple(dict.fromkeys(t for t in tags if is_tag(t))))

    # -- manifests --------------------------------------------------------------------------

    def _resolve(self, repository: str, reference: str) -> Descriptor | None:
        entries = self._entries(repository)
        if ":" in reference:
            for entry in entries:
                if entry.digest == reference:
                    return entry
            path = self._blob_path(repository, reference)
            if not path.is_file():
                return None
            kind = media.effective_media_type(path.read_bytes(), None)
            return Descriptor(kind, reference, path.stat().st_size)
        tagged = [e for e in entries if e.annotations.get(REF_NAME) == reference]
        return tagged[-1] if tagged else None

    async def head_manifest(self, repository: str, reference: str) -> ManifestInfo | None:
        found = self._resolve(repository, reference)
        if found is None or not self._blob_path(repository, found.digest).is_file():
            return None
        return ManifestInfo(found.digest, found.media_type, found.size)

    async def get_manifest(self, repository: str, reference: str) -> Manifest:
        found = self._resolve(repository, reference)
        what = f"manifest {repository}{'@' if ':' in reference else ':'}{reference}"
        path = self._blob_path(repository, found.digest) if found else None
        if found is None or path is None or not path.is_file():
            raise RegistryError(
                f"{what} not found", status=404, oci_code="MANIFEST_UNKNOWN",
                **self._ctx(repository, reference if ":" in reference else None),
            )  # fmt: skip
        ctx = self._ctx(repository, found.digest)
        media.check_manifest_size(path.stat().st_size, **ctx)
        data = path.read_bytes()
        media.verify_digest(data, found.digest, what=what, **ctx)
        kind = media.effective_media_type(data, found.media_type or None)
        media.refuse_schema1(kind, **ctx)
        return Manifest(data, kind, found.digest)

    async def put_manifest(
        self, repository: str, reference: str, data: bytes, media_type: str
    ) -> str:
        ctx = self._ctx(repository, reference if ":" in reference else None)
        media.check_manifest_size(len(data), **ctx)
        kind = media.effective_media_type(data, media_type)
        media.refuse_schema1(kind, **ctx)
        what = f"PUT manifest {repository}:{reference}"
        if ":" in reference:
            digest = media.verify_digest(data, reference, what=what, **ctx)
        else:
            digest = media.compute_digest(data)
        parsed = media.parse_manifest(data, kind)
        # Like a registry (MANIFEST_BLOB_UNKNOWN): referenced content must already be here.
        for needed in (*parsed.blobs(), *parsed.children):
            if not self._blob_path(repository, needed.digest).is_file():
                raise RegistryError(
                    f"{what}: references {needed.digest}, which is not in the layout",
                    oci_code="MANIFEST_BLOB_UNKNOWN", status=400, **ctx,
                )  # fmt: skip
        async with self._lock(repository):
            blob = self._blob_path(repository, digest)
            if not blob.is_file():
                blob.parent.mkdir(parents=True, exist_ok=True)
                _atomic_write(blob, data)
            entry = Descriptor(kind, digest, len(data), artifact_type=parsed.artifact_type)
            index = self._read_index(repository)
            kept = index["manifests"]
            if ":" in reference:
                if any(d.get("digest") == digest for d in kept):
                    return digest
                kept.append(entry.to_json())
            else:
                kept = [d for d in kept if (d.get("annotations") or {}).get(REF_NAME) != reference]
                tagged = entry.to_json()
                tagged["annotations"] = {REF_NAME: reference}
                kept.append(tagged)
            index["manifests"] = kept
            self._write_index(repository, index)
        return digest

    async def delete_manifest(self, repository: str, digest: str) -> None:
        """Forget a manifest and its tags; blobs stay until a garbage collection."""
        async with self._lock(repository):
            index = self._read_index(repository)
            index["manifests"] = [d for d in index["manifests"] if d.get("digest") != digest]
            self._write_index(repository, index)

    # -- blobs ------------------------------------------------------------------------------

    async def blob_exists(self, repository: str, digest: str) -> bool:
        return self._blob_path(repository, digest).is_file()

    async def stream_blob(
        self, repository: str, digest: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> AsyncIterator[bytes]:
        path = self._blob_path(repository, digest)
        ctx = self._ctx(repository, digest)
        try:
            handle: BinaryIO = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError:
            raise RegistryError(
                f"blob {digest} not in {repository}", status=404, oci_code="BLOB_UNKNOWN", **ctx
            ) from None
        hasher = hashlib.new(digest.partition(":")[0])
        with handle:
            while chunk := await asyncio.to_thread(handle.read, chunk_size):
                hasher.update(chunk)
                yield chunk
        actual = f"{digest.partition(':')[0]}:{hasher.hexdigest()}"
        if actual != digest:
            raise DigestMismatchError(f"blob {path} hashes to {actual}; refused", **ctx)

    async def start_upload(self, repository: str) -> UploadSession:
        folder = self._dir(repository) / _UPLOADS
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / uuid.uuid4().hex
        path.touch()
        return UploadSession(repository, str(path))

    async def mount_blob(self, repository: str, digest: str, source: str) -> MountResult:
        """Hard-link (or copy) a blob from another layout under the same folder."""
        origin = self._blob_path(source, digest)
        if not origin.is_file():
            return MountResult(mounted=False, session=await self.start_upload(repository))
        target = self._blob_path(repository, digest)
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            scratch = target.with_name(f".{uuid.uuid4().hex}")
            try:
                os.link(origin, scratch)
            except OSError:
                await asyncio.to_thread(shutil.copyfile, origin, scratch)
            os.replace(scratch, target)
        return MountResult(mounted=True)

    async def upload_blob(
        self,
        repository: str,
        digest: str,
        data: BlobSource,
        *,
        size: int | None = None,
        session: UploadSession | None = None,
    ) -> None:
        session = session or await self.start_upload(repository)
        scratch = Path(session.location)
        ctx = self._ctx(repository, digest)
        hasher = hashlib.new(digest.partition(":")[0])
        written = 0
        try:
            with scratch.open("wb") as out:
                if isinstance(data, bytes):
                    hasher.update(data)
                    out.write(data)
                    written = len(data)
                else:
                    async for chunk in data:
                        hasher.update(chunk)
                        await asyncio.to_thread(out.write, chunk)
                        written += len(chunk)
            actual = f"{digest.partition(':')[0]}:{hasher.hexdigest()}"
            if actual != digest:
                raise DigestMismatchError(
                    f"upload to {repository}: content hashes to {actual}, not {digest}", **ctx
                )
            if size is not None and size != written:
                raise RegistryError(
                    f"upload to {repository}: {written} bytes, expected {size}",
                    oci_code="SIZE_INVALID", **ctx,
                )  # fmt: skip
            target = self._blob_path(repository, digest)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(scratch, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                scratch.unlink()

    # -- referrers --------------------------------------------------------------------------

    async def subject_referrers(self, repository: str, digest: str) -> list[Descriptor]:
        """Manifests in index.json whose `subject` is `digest` (a layout's referrers API)."""
        found: list[Descriptor] = []
        if not (self._dir(repository) / LAYOUT_FILE).exists():
            return []
        for entry in self._entries(repository):
            path = self._blob_path(repository, entry.digest)
            if entry.media_type in media.INDEX_TYPES or not path.is_file():
                continue
            parsed = media.parse_manifest(path.read_bytes(), entry.media_type)
            if parsed.subject is not None and parsed.subject.digest == digest:
                found.append(
                    Descriptor(
                        entry.media_type,
                        entry.digest,
                        entry.size,
                        annotations=parsed.annotations,
                        artifact_type=parsed.artifact_type
                        or (parsed.config.media_type if parsed.config else None),
                    )
                )
        return found

    async def referrers(
        self, repository: str, digest: str, *, artifact_type: str | None = None
    ) -> list[Descriptor]:
        """Manifests in index.json whose `subject` is `digest`, plus the referrers tag's index."""
        found = {d.digest: d for d in await self.subject_referrers(repository, digest)}
        for child in await referrers_from_tag(self, repository, digest):
            found.setdefault(child.digest, child)
        return [d for d in found.values() if artifact_type in (None, d.artifact_type)]


def _atomic_write(path: Path, data: bytes) -> None:
    scratch = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    scratch.write_bytes(data)
    os.replace(scratch, path)


def open_layout(root: str | os.PathLike[str]) -> LayoutRegistry:
    """`oci:DIR`; DIR is created on the first write, reading a missing DIR finds nothing."""
    return LayoutRegistry(Path(root).resolve())
