"""What a repository holds attached to one digest, read within a fixed budget of requests.

The caller already knows, from the repository's tag listing, which of `sha256-<hex>.sig`,
`.att` and the referrers tag `sha256-<hex>` exist, so no tag is probed: each listed tag costs
one GET, then one blob per layer (or one manifest and one blob per referrer), at most
`MAX_EXAMINED` of each. Referrers a registry serves by the OCI 1.1 API appear in no listing:
one more GET per digest asks for them (one per registry where the API is missing). What is read is kept as bytes for `judge.py`; nothing here decides.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Set
from dataclasses import dataclass, field

from cip.errors import RegistryError
from cip.model.refs import short_digest
from cip.oci.media import Descriptor, referrers_tag
from cip.registry.client import Manifest, Registry
from cip.trust.attached import SIMPLE_SIGNING_MEDIA_TYPE, attached_tag
from cip.trust.dsse import ENVELOPE_MEDIA_TYPE
from cip.trust.store import read_blob

MAX_EXAMINED = 16  # layers of one attached tag, or referrers of one digest, opened at most
BUNDLE_PREFIX = "application/vnd.dev.sigstore.bundle"


@dataclass(frozen=True, slots=True)
class Piece:
    """One attached layer or bundle: where it is (for messages), its bytes, its annotations."""

    where: str
    data: bytes
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Evidence:
    """The signature layers, attestation envelopes and sigstore bundles attached to a digest."""

    signatures: list[Piece] = field(default_factory=list)  # `.sig` layers (simple signing)
    envelopes: list[Piece] = field(default_factory=list)  # `.att` layers (DSSE envelopes)
    bundles: list[Piece] = field(default_factory=list)  # sigstore bundle referrers
    unexamined: int = 0  # layers or referrers beyond MAX_EXAMINED

    @property
    def empty(self) -> bool:
        return not (self.signatures or self.envelopes or self.bundles)


async def _manifest(registry: Registry, repository: str, reference: str) -> Manifest | None:
    try:
        return await registry.get_manifest(repository, reference)
    except RegistryError as error:
        if error.status == 404:
            return None  # deleted since the listing
        raise


async def _layers(
    registry: Registry, repository: str, tag: str, media_type: str, evidence: Evidence
) -> list[Piece]:
    manifest = await _manifest(registry, repository, tag)
    if manifest is None:
        return []
    layers = [d for d in manifest.parse().layers if d.media_type == media_type]
    evidence.unexamined += max(0, len(layers) - MAX_EXAMINED)
    chosen = layers[:MAX_EXAMINED]
    blobs = await asyncio.gather(*(read_blob(registry, repository, d.digest) for d in chosen))
    suffix = tag.rpartition(".")[2]
    return [
        Piece(f".{suffix} layer {short_digest(d.digest)}", data, dict(d.annotations))
        for d, data in zip(chosen, blobs, strict=True)
    ]


async def referrer_entries(
    registry: Registry, repository: str, digest: str, listed: Set[str]
) -> list[Descriptor]:
    """The referrers of `digest`: the referrers tag's index when the listing shows it, and those
    the store finds by subject (the OCI 1.1 API, or a layout's index), each once."""
    found: dict[str, Descriptor] = {}
    if referrers_tag(digest) in listed:
        index = await _manifest(registry, repository, referrers_tag(digest))
        found = {d.digest: d for d in index.parse().children} if index is not None else {}
    for entry in await registry.subject_referrers(repository, digest) or ():
        found.setdefault(entry.digest, entry)
    return list(found.values())


async def _bundles(
    registry: Registry, repository: str, digest: str, listed: Set[str], evidence: Evidence
) -> list[Piece]:
    entries = await referrer_entries(registry, repository, digest, listed)
    evidence.unexamined += max(0, len(entries) - MAX_EXAMINED)

    async def one(reference: str) -> Piece | None:
        manifest = await _manifest(registry, repository, reference)
        if manifest is None:
            return None
        layers = manifest.parse().layers
        # Readers open every referrer: the index's artifactType is not to be trusted.
        if len(layers) != 1 or not layers[0].media_type.startswith(BUNDLE_PREFIX):
            return None
        data = await read_blob(registry, repository, layers[0].digest)
        return Piece(f"referrer {short_digest(reference)}", data, manifest.parse().annotations)

    found = await asyncio.gather(*(one(e.digest) for e in entries[:MAX_EXAMINED]))
    return [piece for piece in found if piece is not None]


async def read_evidence(
    registry: Registry, repository: str, digest: str, listed: Set[str]
) -> Evidence:
    """Everything attached to `digest` under the tags `listed` shows; RegistryError when a
    listed tag or its blobs cannot be read."""
    evidence = Evidence()
    sig, att = attached_tag(digest, "sig"), attached_tag(digest, "att")
    signatures, envelopes, bundles = await asyncio.gather(
        _layers(registry, repository, sig, SIMPLE_SIGNING_MEDIA_TYPE, evidence)
        if sig in listed
        else _none(),
        _layers(registry, repository, att, ENVELOPE_MEDIA_TYPE, evidence)
        if att in listed
        else _none(),
        _bundles(registry, repository, digest, listed, evidence),
    )
    evidence.signatures, evidence.envelopes, evidence.bundles = signatures, envelopes, bundles
    return evidence


async def _none() -> list[Piece]:
    return []
