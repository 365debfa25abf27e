"""Manifest media types, and the descriptors a manifest points at.

cip copies manifests byte for byte, so it never re-serialises one: it only needs to know which
blobs and child manifests a manifest references (to copy them first) and whether it is a format
cip refuses (Docker schema1, whose signed form embeds the repository name and cannot be copied
digest for digest). Everything else, OCI artifacts of any `artifactType` included, is handled
generically as bytes plus descriptors.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

from cip.errors import DigestMismatchError, RegistryError, shown

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
OCI_EMPTY_JSON = "application/vnd.oci.empty.v1+json"

INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
SCHEMA1_TYPES = frozenset({DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED})

# Docker Registry 2.8.2 answers 404 for OCI content, and converts a manifest list to one of its
# children, unless all four types are accepted (measured on 2.8.2); the artifact type is for OCI 1.1 peers.
ACCEPT_MANIFESTS = ", ".join(
    (OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST, "*/*;q=0.1")
)

# Layers that the image spec says must not be pushed to other registries (image-spec
# layer.md "Non-distributable layers", and Docker's foreign layers for Windows base images).
FOREIGN_LAYER_TYPES = frozenset(
    {
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    }
)

MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # distribution's default limit, and the OCI spec's SHOULD


class ErrorContext(TypedDict):
    """What an error is about, passed to RegistryError as keyword arguments."""

    registry: str | None
    image: str | None
    digest: str | None


class UnsupportedManifestError(RegistryError):
    """A manifest cip refuses to copy (Docker schema1) or cannot read (not a manifest)."""


def compute_digest(data: bytes, algorithm: str = "sha256") -> str:
    if algorithm not in ("sha256", "sha512"):
        raise RegistryError(f"unsupported digest algorithm {algorithm!r}")
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


# image-spec descriptor.md "Registered algorithms": the only two a registry may answer with.
DIGEST_PATTERN = re.compile(r"sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128}")


def is_digest(value: object) -> bool:
    """Whether `value` is a digest of a registered algorithm, in its canonical form."""
    return isinstance(value, str) and DIGEST_PATTERN.fullmatch(value) is not None


def verify_digest(data: bytes, expected: str, *, what: str, **context: str | None) -> str:
    """Return `expected` if `data` hashes to it, else raise DigestMismatchError.

    `expected` may come from a registry's header: one that is no digest is refused with the
    registry, image and `what` named, rather than failing deep in hashing.
    """
    if not is_digest(expected):
        raise RegistryError(
            f"{what}: {shown(expected)} is not a sha256 or sha512 digest; refused",
            registry=context.get("registry"),
            image=context.get("image"),
            digest=context.get("digest"),
        )
    algorithm = expected.partition(":")[0]
    actual = compute_digest(data, algorithm)
    if actual != expected:
        raise DigestMismatchError(
            f"{what} content hashes to {actual}, not {expected}; refused",
            digest=expected,
            registry=context.get("registry"),
            image=context.get("image"),
        )
    return actual


@dataclass(frozen=True, slots=True)
class Descriptor:
    """What a manifest says about one thing it references (image-spec descriptor.md)."""

    media_type: str
    digest: str
    size: int
    urls: tuple[str, ...] = ()
    annotations: Mapping[str, str] = field(default_factory=dict)
    platform: Mapping[str, Any] | None = None
    artifact_type: str | None = None

    @property
    def is_foreign(self) -> bool:
        return self.media_type in FOREIGN_LAYER_TYPES

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @classmethod
    def from_json(cls, raw: object, *, where: str) -> Descriptor:
        if not isinstance(raw, dict):
            raise UnsupportedManifestError(f"{where}: descriptor is not an object")
        media_type, digest, size = raw.get("mediaType"), raw.get("digest"), raw.get("size")
        if not isinstance(digest, str) or ":" not in digest:
            raise UnsupportedManifestError(f"{where}: descriptor has no valid digest")
        if not isinstance(size, int) or size < 0:
            raise UnsupportedManifestError(f"{where}: descriptor {digest} has no valid size")
        annotations = raw.get("annotations") or {}
        urls = raw.get("urls") or ()
        platform = raw.get("platform")
        artifact_type = raw.get("artifactType")
        return cls(
            media_type=media_type if isinstance(media_type, str) else "",
            digest=digest,
            size=size,
            urls=tuple(str(u) for u in urls) if isinstance(urls, list) else (),
            annotations=(
                {str(k): str(v) for k, v in annotations.items()}
                if isinstance(annotations, dict)
                else {}
            ),
            platform=platform if isinstance(platform, dict) else None,
            artifact_type=artifact_type if isinstance(artifact_type, str) else None,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.artifact_type is not None:
            out["artifactType"] = self.artifact_type
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = dict(self.platform)
        return out


@dataclass(frozen=True, slots=True)
class ParsedManifest:
    """The references of one manifest: what must exist before it can be pushed."""

    media_type: str
    config: Descriptor | None
    layers: tuple[Descriptor, ...]
    children: tuple[Descriptor, ...]  # index entries
    subject: Descriptor | None
    artifact_type: str | None
    annotations: Mapping[str, str]

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def foreign_layers(self) -> tuple[Descriptor, ...]:
        return tuple(d for d in self.layers if d.is_foreign)

    def blobs(self, *, include_foreign: bool = False) -> tuple[Descriptor, ...]:
        """Config and layers to copy; non-distributable layers only when asked for."""
        layers = (
            self.layers if include_foreign else tuple(d for d in self.layers if not d.is_foreign)
        )
        return ((self.config,) if self.config is not None else ()) + layers


def _is_schema1(media_type: str, body: Mapping[str, Any] | None) -> bool:
    if media_type in SCHEMA1_TYPES:
        return True
    return body is not None and body.get("schemaVersion") == 1


def _in_context(error: UnsupportedManifestError, context: Mapping[str, str | None]) -> Exception:
    """`error` naming the registry, image and digest its manifest came from, when known."""
    if not any(context.values()):
        return error
    return UnsupportedManifestError(
        error.message,
        registry=context.get("registry"),
        image=context.get("image"),
        digest=context.get("digest"),
    )


def effective_media_type(data: bytes, header_type: str | None, **context: str | None) -> str:
    """The manifest's own `mediaType` when present, else the Content-Type it was served with.

    OCI manifests may omit `mediaType` (image-spec manifest.md made it SHOULD only in 1.1), so
    the structure decides when both are missing: `manifests` means an index. `context`
    (registry, image, digest) is named by the error for bytes that are no manifest.
    """
    try:
        return _effective_media_type(_load(data), header_type)
    except UnsupportedManifestError as error:
        raise _in_context(error, context) from None


def _effective_media_type(body: Mapping[str, Any], header_type: str | None) -> str:
    declared = body.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    header = (header_type or "").split(";")[0].strip()
    if header and header not in ("application/json", "application/octet-stream", "text/plain"):
        return header
    if body.get("schemaVersion") == 1:
        return DOCKER_SCHEMA1_SIGNED if "signatures" in body else DOCKER_SCHEMA1
    return OCI_INDEX if "manifests" in body else OCI_MANIFEST


def _load(data: bytes) -> dict[str, Any]:
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UnsupportedManifestError(f"manifest is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise UnsupportedManifestError("manifest is not a JSON object")
    return body


def check_manifest_size(size: int, **context: str | None) -> None:
    if size > MAX_MANIFEST_BYTES:
        raise RegistryError(
            f"manifest of {size} bytes exceeds the {MAX_MANIFEST_BYTES} byte limit; refused",
            registry=context.get("registry"),
            image=context.get("image"),
            digest=context.get("digest"),
        )


def refuse_schema1(media_type: str, **context: str | None) -> None:
    if media_type in SCHEMA1_TYPES:
        raise UnsupportedManifestError(
            f"Docker schema1 manifest ({media_type}) refused: schema1 is deprecated and cannot "
            "be copied digest for digest; rebuild or re-push the image as Docker schema2 or OCI",
            registry=context.get("registry"),
            image=context.get("image"),
            digest=context.get("digest"),
        )


def parse_manifest(
    data: bytes, media_type: str | None = None, **context: str | None
) -> ParsedManifest:
    """References of a manifest of any supported type; schema1, and bytes that are no manifest,
    raise UnsupportedManifestError (naming `context`: registry, image, digest, when given)."""
    try:
        return _parse_manifest(data, media_type)
    except UnsupportedManifestError as error:
        raise _in_context(error, context) from None


def _parse_manifest(data: bytes, media_type: str | None) -> ParsedManifest:
    body = _load(data)
    kind = _effective_media_type(body, media_type)
    if _is_schema1(kind, body):
        refuse_schema1(DOCKER_SCHEMA1 if kind not in SCHEMA1_TYPES else kind)
    where = f"{kind} manifest"
    config = body.get("config")
    layers = body.get("layers") or []
    children = body.get("manifests") or []
    subject = body.get("subject")
    if not isinstance(layers, list) or not isinstance(children, list):
        raise UnsupportedManifestError(f"{where}: layers/manifests must be lists")
    annotations = body.get("annotations") or {}
    artifact_type = body.get("artifactType")
    return ParsedManifest(
        media_type=kind,
        config=Descriptor.from_json(config, where=where) if config is not None else None,
        layers=tuple(Descriptor.from_json(d, where=where) for d in layers),
        children=tuple(Descriptor.from_json(d, where=where) for d in children),
        subject=Descriptor.from_json(subject, where=where) if subject is not None else None,
        artifact_type=artifact_type if isinstance(artifact_type, str) else None,
        annotations=(
            {str(k): str(v) for k, v in annotations.items()}
            if isinstance(annotations, dict)
            else {}
        ),
    )


def referrers_tag(digest: str) -> str:
    """`<alg>-<hex>`: distribution-spec 1.1 "Referrers Tag Schema", for registries without it."""
    algorithm, _, encoded = digest.partition(":")
    return re.sub(r"[^a-zA-Z0-9._-]", "-", f"{algorithm[:32]}-{encoded[:64]}")
