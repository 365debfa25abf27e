"""Promotion attestations: a signed record of where a digest was promoted, one per digest.

The record is an in-toto statement (`statements.PromotionRecord`) signed by the run's signer as
a DSSE envelope, stored as cosign stores attestations: the legacy format puts it in a layer of
the `sha256-<hex>.att` tag on the digest's primary (media type
`application/vnd.dsse.envelope.v1+json`, annotation `predicateType`; a keyless signer adds the
certificate, chain and Rekor entry annotations); the bundle format writes a sigstore bundle
referrer (annotation `dev.sigstore.bundle.predicateType`) listed in the referrers tag. Mirrors
get the primary's by merge, as signatures do.

Idempotent: the primary's promotion attestations by this signer are read first, and a new one
is made only when none of them names every destination of the digest now (the destination set
grew). Attestations staging attached to the image (build provenance) are merged into the same
`.att` tag, in the same PUT as cip's own, so an `.att` on a destination always holds cip's
attestation: the plan can trust the tag listing, and a run that died before attesting leaves
no `.att` behind for the next run to mistake.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cryptography import x509

from cip.oci.media import Descriptor, compute_digest, referrers_tag
from cip.trust.attached import CERTIFICATE_ANNOTATION, attached_tag
from cip.trust.bundles import (
    PREDICATE_ANNOTATION,
    copy_referrers,
    merge_referrers_index,
    referrer,
    write_referrer,
)
from cip.trust.dsse import ENVELOPE_MEDIA_TYPE, Envelope, parse_envelope
from cip.trust.identity import certificate_policy
from cip.trust.signer import KeySigner
from cip.trust.signing import Place, SignatureService
from cip.trust.statements import (
    PROMOTION_PREDICATE_TYPE,
    PromotionRecord,
    parse_statement,
    promoted_to,
)
from cip.trust.store import Incoming, read_attached, read_blob

PREDICATE_TYPE_ANNOTATION = "predicateType"  # cosign's `.att` layer annotation
MAX_OWN = 64  # promotion attestations of one digest read at most (one per destination change)


class StatementSigner(Protocol):
    """What the bundle format needs: `keyless.KeylessSigner`."""

    def sign_statement(self, statement: bytes) -> bytes: ...

    def own_statement(self, data: bytes) -> bytes | None: ...


@dataclass
class AttestationStats:
    made: int = 0  # attestations cip signed
    replicated: int = 0  # mirrors whose attestation grew
    already: int = 0  # digests whose primary already named every destination


@dataclass
class AttestationService:
    """Attests and replicates promotion attestations for one run, next to `signatures`."""

    signatures: SignatureService
    stats: AttestationStats = field(default_factory=AttestationStats)

    @property
    def formats(self) -> frozenset[str]:
        return self.signatures.formats

    async def attest(self, place: Place, record: PromotionRecord, staging: Place | None) -> None:
        """Make the primary `place` carry a promotion attestation naming every destination of
        `record` (staging's attestations merged in with it), then put the referrers index
        entries the sign step held, with the bundle's, in one PUT."""
        made = False
        if "legacy" in self.formats:
            made = await self._attest_legacy(place, record, staging)
        elif staging is not None and self.signatures.copy_attached:  # staging's `.att` alone
            await self.signatures.replicate_tag(
                staging, place, record.digest, "att", required=False
            )
        if "bundle" in self.formats:
            made = await self._attest_bundle(place, record) or made
        if not made:
            self.stats.already += 1

    def _own_envelope(self, envelope: Envelope, annotations: dict[str, str]) -> bool:
        signer = self.signatures.signer
        if isinstance(signer, KeySigner):
            return envelope.signed_by(signer.private_key.public_key())
        if signer is None or CERTIFICATE_ANNOTATION not in annotations:
            return False
        from cip.trust.keyless import KeylessSigner  # sigstore loads only for keyless signers

        if not isinstance(signer, KeylessSigner):
            return False
        if signer.verifier().envelope_problem(envelope, annotations) is not None:
            return False
        leaf = x509.load_pem_x509_certificate(annotations[CERTIFICATE_ANNOTATION].encode())
        return certificate_policy(leaf).description == signer.identity

    async def _covered_legacy(self, place: Place, layers: Sequence[Descriptor]) -> set[str]:
        """Destinations the promotion attestations by this signer among `layers` name."""
        ours = [
            layer
            for layer in layers
            if layer.media_type == ENVELOPE_MEDIA_TYPE
            and layer.annotations.get(PREDICATE_TYPE_ANNOTATION) == PROMOTION_PREDICATE_TYPE
        ][-MAX_OWN:]
        blobs = await asyncio.gather(
            *(read_blob(place.registry, place.repository, layer.digest) for layer in ours)
        )

        def covered() -> set[str]:
            found: set[str] = set()
            for layer, data in zip(ours, blobs, strict=True):
                try:
                    envelope = parse_envelope(data)
                    statement = parse_statement(envelope.payload)
                except ValueError:
                    continue
                if statement.predicate_type == PROMOTION_PREDICATE_TYPE and self._own_envelope(
                    envelope, dict(layer.annotations)
                ):
                    found |= promoted_to(statement)
            return found

        return await asyncio.to_thread(covered)

    async def _attest_legacy(
        self, place: Place, record: PromotionRecord, staging: Place | None
    ) -> bool:
        tag = attached_tag(record.digest, "att")
        writer = self.signatures.writer
        incoming: list[Incoming] = []
        if staging is not None and self.signatures.copy_attached:
            theirs = await read_attached(staging.registry, staging.repository, tag)
            if theirs is not None:
                incoming = [Incoming(d, staging.origin()) for d in theirs.parse().layers]
        # Read once, and handed to the merge: within a run, nothing else writes the primary's
        # `.att` of this digest (one attest per digest; replication writes the mirrors).
        current = await read_attached(place.registry, place.repository, tag)
        existing = current.parse().layers if current is not None else ()
        needed = not set(record.dst_refs) <= await self._covered_legacy(place, existing)
        signer = self.signatures.signer

        async def own(layers: Sequence[Descriptor]) -> Incoming | None:
            if not needed or signer is None:
                return None
            envelope, annotations = await asyncio.to_thread(
                signer.sign_envelope, record.statement()
            )
            self.stats.made += 1
            annotations = {PREDICATE_TYPE_ANNOTATION: PROMOTION_PREDICATE_TYPE, **annotations}
            descriptor = Descriptor(
                ENVELOPE_MEDIA_TYPE,
                compute_digest(envelope),
                len(envelope),
                annotations=annotations,
            )
            return Incoming(descriptor, envelope)

        result = await writer.merge(
            place.registry, place.repository, tag, incoming, own=own, current=current
        )
        return result.written

    async def _covered_bundles(self, place: Place, digest: str) -> set[str]:
        index = await read_attached(place.registry, place.repository, referrers_tag(digest))
        if index is None:
            return set()
        entries = [
            e
            for e in index.parse().children
            if e.annotations.get(PREDICATE_ANNOTATION) == PROMOTION_PREDICATE_TYPE
        ][-MAX_OWN:]
        signer: StatementSigner = self.signatures.signer  # type: ignore[assignment]
        found: set[str] = set()
        for entry in entries:
            manifest = (await place.registry.get_manifest(place.repository, entry.digest)).parse()
            if len(manifest.layers) != 1:
                continue
            data = await read_blob(place.registry, place.repository, manifest.layers[0].digest)
            statement = await asyncio.to_thread(signer.own_statement, data)
            if statement is not None:
                try:
                    found |= promoted_to(parse_statement(statement))
                except ValueError:
                    continue
        return found

    async def _attest_bundle(self, place: Place, record: PromotionRecord) -> bool:
        entries = self.signatures.held_entries(place, record.digest)
        if not set(record.dst_refs) <= await self._covered_bundles(place, record.digest):
            signer: StatementSigner = self.signatures.signer  # type: ignore[assignment]
            bundle = await asyncio.to_thread(signer.sign_statement, record.statement())
            self.stats.made += 1
            subject = (
                await place.registry.get_manifest(place.repository, record.digest)
            ).descriptor()
            made = referrer(bundle, subject, predicate_type=PROMOTION_PREDICATE_TYPE)
            await write_referrer(self.signatures.writer, place.registry, place.repository, made)
            entries.append(made.descriptor)
        if not entries:
            return False
        await merge_referrers_index(
            self.signatures.writer, place.registry, place.repository, record.digest, entries
        )
        return True

    async def replicate(self, source: Place, target: Place, digest: str) -> None:
        """Merge the primary's attestation into a mirror (bundles travel with the referrers
        index, which the signature's replication merges too)."""
        grown = await self.signatures.replicate_tag(
            source, target, digest, "att", required="legacy" in self.formats
        )
        if "bundle" in self.formats:
            grown = bool(
                await copy_referrers(
                    self.signatures.writer, source.registry, source.repository,
                    target.registry, target.repository, digest,
                )
            ) or grown  # fmt: skip
        if grown:
            self.stats.replicated += 1
