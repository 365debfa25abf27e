"""Deterministic test images: the same seed gives the same bytes, so the same digests.

Builds OCI and Docker schema2 images, OCI indexes and Docker manifest lists, OCI artifacts
(any artifactType, with a subject), and large layers generated from a seed in chunks, so a
64 MiB layer is never held in memory. `push` writes an image through cip's own `Registry`
protocol, so the same image lands in a lab registry or in an OCI layout folder.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import tarfile
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cip.oci import media
from cip.registry.client import Registry

GENERATOR_CHUNK = 1024 * 1024
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
SMALL_BLOB_LIMIT = 8 * 1024 * 1024  # above this, uploads stream


@dataclass(frozen=True)
class Blob:
    """A blob given as bytes, or as (seed, size) generated on demand."""

    media_type: str
    digest: str
    size: int
    data: bytes | None = None
    seed: int | None = None

    def chunks(self, chunk_size: int = GENERATOR_CHUNK) -> Iterator[bytes]:
        if self.data is not None:
            for start in range(0, max(len(self.data), 1), chunk_size):
                yield self.data[start : start + chunk_size]
            return
        assert self.seed is not None
        yield from _generate(self.seed, self.size)

    async def aiter(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks():
            yield chunk

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


def _generate(seed: int, size: int) -> Iterator[bytes]:
    rng = random.Random(seed)
    left = size
    while left > 0:
        n = min(GENERATOR_CHUNK, left)
        yield rng.randbytes(n)
        left -= n


def bytes_blob(data: bytes, media_type: str = OCI_LAYER) -> Blob:
    return Blob(media_type, media.compute_digest(data), len(data), data=data)


def seeded_blob(seed: int, size: int, media_type: str = OCI_LAYER) -> Blob:
    """A blob of `size` pseudo-random bytes; hashed once here, streamed when pushed."""
    if size <= SMALL_BLOB_LIMIT:
        return bytes_blob(b"".join(_generate(seed, size)), media_type)
    hasher = hashlib.sha256()
    for chunk in _generate(seed, size):
        hasher.update(chunk)
    return Blob(media_type, f"sha256:{hasher.hexdigest()}", size, seed=seed)


@dataclass(frozen=True)
class Image:
    """A manifest (exact bytes) with the blobs and child images it needs."""

    manifest: bytes
    media_type: str
    blobs: tuple[Blob, ...] = ()
    children: tuple[Image, ...] = ()
    platform: Mapping[str, str] | None = field(default=None)

    @property
    def digest(self) -> str:
        return media.compute_digest(self.manifest)

    @property
    def size(self) -> int:
        return len(self.manifest)

    def descriptor(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        artifact_type = json.loads(self.manifest).get("artifactType")
        if artifact_type:
            out["artifactType"] = artifact_type
        if self.platform is not None:
            out["platform"] = dict(self.platform)
        return out


def _dump(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, indent=3).encode()


def _image(
    seed: int,
    *,
    manifest_type: str,
    config_type: str,
    layer_type: str,
    layers: int,
    layer_size: int,
    large_layer: int | None,
    platform: Mapping[str, str] | None,
    annotations: Mapping[str, str] | None,
) -> Image:
    layer_blobs = [seeded_blob(seed * 1000 + i, layer_size, layer_type) for i in range(layers)]
    if large_layer:
        layer_blobs.append(seeded_blob(seed * 1000 + 999, large_layer, layer_type))
    arch = (platform or {}).get("architecture", "amd64")
    os_name = (platform or {}).get("os", "linux")
    config = bytes_blob(
        _dump(
            {
                "architecture": arch,
                "os": os_name,
                "config": {"Labels": {"lab.seed": str(seed)}},
                "rootfs": {"type": "layers", "diff_ids": [b.digest for b in layer_blobs]},
            }
        ),
        config_type,
    )
    body: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": config.descriptor(),
        "layers": [b.descriptor() for b in layer_blobs],
    }
    if annotations:
        body["annotations"] = dict(annotations)
    return Image(_dump(body), manifest_type, (config, *layer_blobs), platform=platform)


def oci_image(
    seed: int,
    *,
    layers: int = 2,
    layer_size: int = 2048,
    large_layer: int | None = None,
    platform: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> Image:
    return _image(
        seed, manifest_type=media.OCI_MANIFEST, config_type=OCI_CONFIG, layer_type=OCI_LAYER,
        layers=layers, layer_size=layer_size, large_layer=large_layer, platform=platform,
        annotations=annotations,
    )  # fmt: skip


def docker_image(
    seed: int,
    *,
    layers: int = 2,
    layer_size: int = 2048,
    large_layer: int | None = None,
    platform: Mapping[str, str] | None = None,
) -> Image:
    return _image(
        seed, manifest_type=media.DOCKER_MANIFEST, config_type=DOCKER_CONFIG,
        layer_type=DOCKER_LAYER, layers=layers, layer_size=layer_size, large_layer=large_layer,
        platform=platform, annotations=None,
    )  # fmt: skip


PLATFORMS = (
    {"architecture": "amd64", "os": "linux"},
    {"architecture": "arm64", "os": "linux"},
    {"architecture": "s390x", "os": "linux"},
)


def oci_index(seed: int, platforms: Sequence[Mapping[str, str]] = PLATFORMS[:2]) -> Image:
    children = tuple(oci_image(seed * 10 + i, platform=p) for i, p in enumerate(platforms))
    body = {
        "schemaVersion": 2,
        "mediaType": media.OCI_INDEX,
        "manifests": [c.descriptor() for c in children],
    }
    return Image(_dump(body), media.OCI_INDEX, children=children)


def docker_manifest_list(seed: int, platforms: Sequence[Mapping[str, str]] = PLATFORMS) -> Image:
    children = tuple(docker_image(seed * 10 + i, platform=p) for i, p in enumerate(platforms))
    body = {
        "schemaVersion": 2,
        "mediaType": media.DOCKER_MANIFEST_LIST,
        "manifests": [c.descriptor() for c in children],
    }
    return Image(_dump(body), media.DOCKER_MANIFEST_LIST, children=children)


DEBIAN_12_OS_RELEASE = """PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
"""
# (package, version) pairs a scanner finds in the dpkg status file of `debian_image`.
DEBIAN_PACKAGES = (("openssl", "3.0.11-1~deb12u2"), ("curl", "7.88.1-10+deb12u5"))


def _tar(files: Mapping[str, bytes]) -> bytes:
    """A layer tar with fixed owners and times, so the same files give the same digest."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        folders = sorted(
            {"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)}
        )
        for folder in folders:
            info = tarfile.TarInfo(folder)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            archive.addfile(info)
        for path, data in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def dpkg_status(packages: Sequence[tuple[str, str]]) -> bytes:
    """`var/lib/dpkg/status` listing these packages as installed (Debian policy 5.6 fields)."""
    stanzas = [
        f"Package: {name}\nStatus: install ok installed\nPriority: optional\n"
        f"Architecture: amd64\nVersion: {version}\nMaintainer: lab <lab@example.invalid>\n"
        f"Description: {name} as a scanner sees it\n"
        for name, version in packages
    ]
    return "\n".join(stanzas).encode()


def debian_image(
    seed: int,
    packages: Sequence[tuple[str, str]] = DEBIAN_PACKAGES,
    *,
    platform: Mapping[str, str] | None = None,
) -> Image:
    """An OCI image a vulnerability scanner reads as Debian 12 with `packages` installed: one
    layer holding `etc/os-release`, `etc/debian_version` and the dpkg status file (and a seed file, so two seeds give
    two digests). Nothing in it runs; scanners only read those files."""
    layer = bytes_blob(
        _tar(
            {
                "etc/os-release": DEBIAN_12_OS_RELEASE.encode(),
                "etc/debian_version": b"12.11\n",  # what scanners read Debian's release from
                "var/lib/dpkg/status": dpkg_status(packages),
                "etc/lab-seed": str(seed).encode(),
            }
        )
    )
    arch = (platform or {}).get("architecture", "amd64")
    config = bytes_blob(
        _dump(
            {
                "architecture": arch,
                "os": (platform or {}).get("os", "linux"),
                "config": {"Labels": {"lab.seed": str(seed)}},
                "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
            }
        ),
        OCI_CONFIG,
    )
    body = {
        "schemaVersion": 2,
        "mediaType": media.OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [layer.descriptor()],
    }
    return Image(_dump(body), media.OCI_MANIFEST, (config, layer), platform=platform)


def debian_index(seed: int, platforms: Sequence[Mapping[str, str]] = PLATFORMS[:2]) -> Image:
    """An OCI index of `debian_image`s, one per platform."""
    children = tuple(debian_image(seed * 10 + i, platform=p) for i, p in enumerate(platforms))
    body = {
        "schemaVersion": 2,
        "mediaType": media.OCI_INDEX,
        "manifests": [c.descriptor() for c in children],
    }
    return Image(_dump(body), media.OCI_INDEX, children=children)


EMPTY_CONFIG = bytes_blob(b"{}", media.OCI_EMPTY_JSON)


def artifact(
    seed: int,
    artifact_type: str,
    *,
    subject: Image | None = None,
    payload_type: str = "application/vnd.lab.payload",
    annotations: Mapping[str, str] | None = None,
) -> Image:
    """An OCI 1.1 artifact (image-spec manifest.md "Guidelines for Artifact Usage")."""
    payload = bytes_blob(f"payload {seed}".encode(), payload_type)
    body: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media.OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": EMPTY_CONFIG.descriptor(),
        "layers": [payload.descriptor()],
        "annotations": dict(annotations or {"lab.seed": str(seed)}),
    }
    if subject is not None:
        body["subject"] = {
            "mediaType": subject.media_type,
            "digest": subject.digest,
            "size": subject.size,
        }
    return Image(_dump(body), media.OCI_MANIFEST, (EMPTY_CONFIG, payload))


def referrers_index(referrers: Sequence[Image]) -> Image:
    """The index a client maintains under the `sha256-<hex>` tag where the API is missing."""
    body = {
        "schemaVersion": 2,
        "mediaType": media.OCI_INDEX,
        "manifests": [r.descriptor() for r in referrers],
    }
    return Image(_dump(body), media.OCI_INDEX)


def schema1_manifest(name: str = "lab/old", tag: str = "v1") -> bytes:
    """An unsigned Docker schema1 manifest, the kind cip must refuse."""
    return _dump(
        {
            "schemaVersion": 1,
            "name": name,
            "tag": tag,
            "architecture": "amd64",
            "fsLayers": [{"blobSum": EMPTY_CONFIG.digest}],
            "history": [{"v1Compatibility": "{}"}],
        }
    )


async def push_blob(registry: Registry, repository: str, blob: Blob) -> None:
    if await registry.blob_exists(repository, blob.digest):
        return
    if blob.data is not None:
        await registry.upload_blob(repository, blob.digest, blob.data)
    else:
        await registry.upload_blob(repository, blob.digest, blob.aiter(), size=blob.size)


async def push(registry: Registry, repository: str, image: Image, tag: str | None = None) -> str:
    """Blobs, then children, then the manifest by digest, then the tag; returns the digest."""
    for child in image.children:
        await push(registry, repository, child)
    for blob in image.blobs:
        await push_blob(registry, repository, blob)
    await registry.put_manifest(repository, image.digest, image.manifest, image.media_type)
    if tag is not None:
        await registry.put_manifest(repository, tag, image.manifest, image.media_type)
    return image.digest
