"""Attached-artifact tags and the manifests behind them, in cosign's "legacy" tag scheme.

cosign keeps what it attaches to `repo@sha256:<hex>` under tags of the same repository:
`sha256-<hex>.sig` (signatures), `.att` (attestations), `.sbom`, and the OCI referrers tag
`sha256-<hex>` (distribution-spec "Referrers Tag Schema"). These tags are not image tags: they
are rewritten as content is attached, so promotion merges them instead of copying or refusing
them as tag moves.

A `.sig`/`.att` manifest is an OCI image manifest with one layer per signature and a config that
lists the layers as diff_ids (go-containerregistry's empty image plus appended layers); it is
rebuilt here with the same field order and no spaces, as cosign writes it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

# Defined in the model so the pure planner can use it; re-exported for trust's callers.
from cip.model.refs import is_attached_tag as is_attached_tag
from cip.oci.media import OCI_MANIFEST, Descriptor, compute_digest

SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
OCI_CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"
BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"
SUFFIXES = ("sig", "att", "sbom")
MAX_LAYERS = 1000  # cosign refuses to append beyond this many signatures
_GO_ZERO_TIME = "0001-01-01T00:00:00Z"
_ATTACHED = re.compile(r"sha256-(?P<hex>[0-9a-f]{64})(?:\.(?P<suffix>sig|att|sbom))?")


def attached_tag(digest: str, suffix: str | None = "sig") -> str:
    """`sha256-<hex>.<suffix>`, or the referrers tag `sha256-<hex>` when suffix is None."""
    algorithm, _, encoded = digest.partition(":")
    return f"{algorithm}-{encoded}" + (f".{suffix}" if suffix else "")


def signature_tag(digest: str) -> str:
    return attached_tag(digest, "sig")


def parse_attached_tag(tag: str) -> tuple[str, str | None] | None:
    """(digest, suffix or None for the referrers tag) of a cosign-scheme tag, else None."""
    match = _ATTACHED.fullmatch(tag)
    if match is None:
        return None
    return f"sha256:{match['hex']}", match["suffix"]


def signed_digests(tags: Iterable[str], suffix: str = "sig") -> set[str]:
    """Digests that a tag listing shows a `.sig` (or `.<suffix>`) tag for."""
    found: set[str] = set()
    for tag in tags:
        parsed = parse_attached_tag(tag)
        if parsed is not None and parsed[1] == suffix:
            found.add(parsed[0])
    return found


def attested_digests(tags: Iterable[str]) -> set[str]:
    """Digests that a tag listing shows an `.att` tag for."""
    return signed_digests(tags, "att")


def referred_digests(tags: Iterable[str]) -> set[str]:
    """Digests that a tag listing shows a referrers tag (`sha256-<hex>`) for."""
    found: set[str] = set()
    for tag in tags:
        parsed = parse_attached_tag(tag)
        if parsed is not None and parsed[1] is None:
            found.add(parsed[0])
    return found


def _dump(body: object) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def _descriptor(d: Descriptor) -> dict[str, Any]:
    # go-containerregistry's Descriptor field order: mediaType, size, digest, ..., annotations.
    out: dict[str, Any] = {"mediaType": d.media_type, "size": d.size, "digest": d.digest}
    if d.annotations:
        out["annotations"] = dict(d.annotations)
    return out


@dataclass(frozen=True, slots=True)
class AttachedManifest:
    """A `.sig`/`.att` manifest built from its layers, with the config blob it needs."""

    manifest: bytes
    config: bytes
    layers: tuple[Descriptor, ...]

    @property
    def digest(self) -> str:
        return compute_digest(self.manifest)

    @property
    def config_descriptor(self) -> Descriptor:
        return Descriptor(OCI_CONFIG_MEDIA_TYPE, compute_digest(self.config), len(self.config))


def build_manifest(layers: Sequence[Descriptor]) -> AttachedManifest:
    """The manifest and config cosign writes for these layers (uncompressed: diff_id = digest)."""
    config = _dump(
        {
            "architecture": "",
            "created": _GO_ZERO_TIME,
            "history": [{"created": _GO_ZERO_TIME} for _ in layers],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": [d.digest for d in layers]},
            "config": {},
        }
    )
    config_descriptor = Descriptor(OCI_CONFIG_MEDIA_TYPE, compute_digest(config), len(config))
    manifest = _dump(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": _descriptor(config_descriptor),
            "layers": [_descriptor(d) for d in layers],
        }
    )
    return AttachedManifest(manifest, config, tuple(layers))


# Names the signer of a layer when it can tell (a key id), else None; see `merge_layers`.
SignerOf = Callable[[Descriptor], str | None]


def layer_key(layer: Descriptor, signer_of: SignerOf | None = None) -> tuple[str, ...]:
    """Two layers with equal keys are one signature: the same payload with the same signature
    (and certificate), or the same payload signed by the same key or identity."""
    signer = signer_of(layer) if signer_of is not None else None
    if signer is not None:
        return (layer.digest, "signer", signer)
    annotations = layer.annotations
    return (
        layer.digest,
        "signature",
        annotations.get(SIGNATURE_ANNOTATION, ""),
        annotations.get(CERTIFICATE_ANNOTATION, ""),
    )


def merge_layers(
    existing: Sequence[Descriptor],
    *incoming: Sequence[Descriptor],
    signer_of: SignerOf | None = None,
) -> tuple[list[Descriptor], list[Descriptor]]:
    """The union of layers, existing ones first and in order; returns (merged, added).

    Nothing already there is dropped or reordered, so a merge never loses someone's signature.
    """
    merged = list(existing)
    seen = {layer_key(d, signer_of) for d in existing}
    added: list[Descriptor] = []
    for layers in incoming:
        for layer in layers:
            key = layer_key(layer, signer_of)
            if key in seen:
                continue
            seen.add(key)
            merged.append(layer)
            added.append(layer)
    return merged, added


def merge_index_entries(
    existing: Sequence[Descriptor], *incoming: Sequence[Descriptor]
) -> tuple[list[Descriptor], list[Descriptor]]:
    """The union of a referrers index's descriptors, by digest; returns (merged, added)."""
    merged = list(existing)
    seen = {d.digest for d in existing}
    added: list[Descriptor] = []
    for entries in incoming:
        for entry in entries:
            if entry.digest not in seen:
                seen.add(entry.digest)
                merged.append(entry)
                added.append(entry)
    return merged, added


def build_index(entries: Sequence[Descriptor]) -> bytes:
    """A referrers index (OCI image index) over these descriptors."""
    return _dump(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [entry.to_json() for entry in entries],
        }
    )
