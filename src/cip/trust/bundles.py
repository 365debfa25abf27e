"""cosign v3's signature format: a sigstore bundle v0.3 stored as an OCI 1.1 referrer.

cosign v3 signs a DSSE envelope over an in-toto statement (predicateType
`https://sigstore.dev/cosign/sign/v1`, the image digest as subject) and stores the bundle as the
single layer of a manifest whose `subject` is the image (specs/BUNDLE_SPEC.md): artifactType
`application/vnd.dev.sigstore.bundle.v0.3+json`, the empty config, annotations naming the
content and predicate type, PUT by digest. Registries without the referrers API list referrers
in an index under the tag `sha256-<hex>`; cip maintains that tag on every registry, so its plan
sees bundles in the tag listing it reads anyway, and it merges the index (never drops an
entry), as it merges `.sig` tags.

Readers do not trust the index's `artifactType` (go-containerregistry writes the config's media
type there): each referrer manifest is opened and kept when it has exactly one bundle layer.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from cip.errors import RegistryError
from cip.oci.media import OCI_EMPTY_JSON, OCI_MANIFEST, Descriptor, compute_digest, referrers_tag
from cip.registry.client import Registry
from cip.trust.attached import build_index, merge_index_entries
from cip.trust.store import AttachedWriter, BlobOrigin, read_attached, read_blob

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
SIGN_PREDICATE_TYPE = "https://sigstore.dev/cosign/sign/v1"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
CONTENT_ANNOTATION = "dev.sigstore.bundle.content"
PREDICATE_ANNOTATION = "dev.sigstore.bundle.predicateType"
CREATED_ANNOTATION = "org.opencontainers.image.created"
EMPTY_CONFIG = b"{}"
EMPTY_DESCRIPTOR = Descriptor(OCI_EMPTY_JSON, compute_digest(EMPTY_CONFIG), len(EMPTY_CONFIG))


def statement(reference: str, digest: str) -> bytes:
    """The in-toto statement cosign v3 signs for `reference@digest`."""
    algorithm, _, encoded = digest.partition(":")
    body = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": reference, "digest": {algorithm: encoded}}],
        "predicateType": SIGN_PREDICATE_TYPE,
        "predicate": {},
    }
    return json.dumps(body, separators=(",", ":")).encode()


def _descriptor_json(d: Descriptor) -> dict[str, object]:
    out: dict[str, object] = {"mediaType": d.media_type, "digest": d.digest, "size": d.size}
    if d.annotations:
        out["annotations"] = dict(d.annotations)
    return out


@dataclass(frozen=True, slots=True)
class Referrer:
    """A bundle referrer manifest and the bundle blob it needs."""

    manifest: bytes
    layer: Descriptor
    bundle: bytes

    @property
    def descriptor(self) -> Descriptor:
        """Its entry in the referrers index (artifactType as the spec has it)."""
        return Descriptor(
            OCI_MANIFEST,
            compute_digest(self.manifest),
            len(self.manifest),
            annotations=self.annotations,
            artifact_type=BUNDLE_MEDIA_TYPE,
        )

    @property
    def annotations(self) -> dict[str, str]:
        return dict(json.loads(self.manifest).get("annotations") or {})


def referrer(
    bundle: bytes,
    subject: Descriptor,
    *,
    created: datetime | None = None,
    predicate_type: str = SIGN_PREDICATE_TYPE,
) -> Referrer:
    """The manifest cosign v3 writes for a bundle of a signature (or, with another predicate
    type, an attestation) of `subject`."""
    layer = Descriptor(BUNDLE_MEDIA_TYPE, compute_digest(bundle), len(bundle))
    moment = (created or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": BUNDLE_MEDIA_TYPE,
        "config": _descriptor_json(EMPTY_DESCRIPTOR),
        "layers": [_descriptor_json(layer)],
        "subject": _descriptor_json(Descriptor(subject.media_type, subject.digest, subject.size)),
        "annotations": {
            CONTENT_ANNOTATION: "dsse-envelope",
            PREDICATE_ANNOTATION: predicate_type,
            CREATED_ANNOTATION: moment,
        },
    }
    return Referrer(json.dumps(manifest, separators=(",", ":")).encode(), layer, bundle)


async def bundles_of(registry: Registry, repository: str, digest: str) -> list[bytes]:
    """The sigstore bundles referring to `digest` (from the referrers tag's index)."""
    index = await read_attached(registry, repository, referrers_tag(digest))
    if index is None:
        return []
    found: list[bytes] = []
    for entry in index.parse().children:
        manifest = (await registry.get_manifest(repository, entry.digest)).parse()
        layers = manifest.layers
        if len(layers) == 1 and layers[0].media_type.startswith(
            "application/vnd.dev.sigstore.bundle"
        ):
            found.append(await read_blob(registry, repository, layers[0].digest))
    return found


async def write_referrer(
    writer: AttachedWriter, registry: Registry, repository: str, made: Referrer
) -> None:
    """Blobs, then the referrer by digest (no index entry yet)."""
    await asyncio.gather(
        writer.ensure_blob(registry, repository, EMPTY_DESCRIPTOR.digest, EMPTY_CONFIG),
        writer.ensure_blob(registry, repository, made.layer.digest, made.bundle),
    )
    await registry.put_manifest(repository, made.descriptor.digest, made.manifest, OCI_MANIFEST)


async def put_referrer(
    writer: AttachedWriter, registry: Registry, repository: str, made: Referrer, subject: str
) -> None:
    """Blobs, then the referrer by digest, then its entry in the referrers index."""
    await write_referrer(writer, registry, repository, made)
    await merge_referrers_index(writer, registry, repository, subject, [made.descriptor])


async def copy_referrers(
    writer: AttachedWriter,
    source: Registry,
    source_repository: str,
    target: Registry,
    target_repository: str,
    subject: str,
    *,
    required: bool = True,
    hold: list[Descriptor] | None = None,
    by_subject: bool = False,
) -> int:
    """Merge the source's referrers of `subject` into the target; how many were added.

    Referrer manifests (blobs first) go in before the index entry that names them. `hold`: the
    entries are appended there instead of merged into the target's index (the caller puts them
    in its own PUT). Without `required`, a source without referrers adds nothing. `by_subject`:
    those the source serves by the OCI 1.1 API (or a layout's index) count too, as in staging;
    cip's own destinations keep theirs in the referrers tag.
    """
    theirs = await read_attached(source, source_repository, referrers_tag(subject))
    entries = list(theirs.parse().children) if theirs is not None else []
    if by_subject:
        known = {entry.digest for entry in entries}
        served = await source.subject_referrers(source_repository, subject) or ()
        entries += [entry for entry in served if entry.digest not in known]
    if not entries:
        if not required:
            return 0
        raise RegistryError(
            f"no bundle to replicate: {referrers_tag(subject)} is missing on {source.name}",
            registry=source.name,
            image=source_repository,
            digest=subject,
        )
    ours = None
    if hold is None:
        ours = await read_attached(target, target_repository, referrers_tag(subject))
    existing = ours.parse().children if ours is not None else ()
    _, added = merge_index_entries(existing, entries)
    origin = BlobOrigin(source, source_repository)
    for entry in added:  # referrers before the index that names them
        manifest = await source.get_manifest(source_repository, entry.digest)
        blobs = manifest.parse().blobs()
        await asyncio.gather(
            *(
                writer.ensure_blob(target, target_repository, b.digest, origin, size=b.size)
                for b in blobs
            )
        )
        await target.put_manifest(
            target_repository, entry.digest, manifest.data, manifest.media_type
        )
    if hold is not None:
        hold.extend(added)
    elif added:
        await merge_referrers_index(writer, target, target_repository, subject, added)
    return len(added)


async def merge_referrers_index(
    writer: AttachedWriter,
    registry: Registry,
    repository: str,
    subject: str,
    entries: list[Descriptor],
) -> bool:
    """The union of the `sha256-<hex>` index and `entries`, in one PUT; whether it grew."""
    tag = referrers_tag(subject)
    async with writer.lock(registry, repository, tag):
        current = await read_attached(registry, repository, tag)
        existing = current.parse().children if current is not None else ()
        merged, added = merge_index_entries(existing, entries)
        if not added:
            return False
        await registry.put_manifest(
            repository, tag, build_index(merged), "application/vnd.oci.image.index.v1+json"
        )
        return True
