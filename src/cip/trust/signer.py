"""Signers and verifiers of simple-signing payloads.

A signer turns payload bytes into the layer annotations cosign stores with them; a verifier
says whether a layer's signature holds for payload bytes. Key mode (this module) signs with
ECDSA P-256 over SHA-256, DER-encoded and base64'd into `dev.cosignproject.cosign/signature`,
and uploads nothing to a transparency log, as `cosign sign --tlog-upload=false` does.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from cip.oci.media import Descriptor, compute_digest
from cip.trust.attached import SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE
from cip.trust.dsse import IN_TOTO_PAYLOAD_TYPE, envelope_bytes, pae
from cip.trust.keys import key_id


class Signer(Protocol):
    """What the signing machinery needs from any signer: a key (`KeySigner`) or an OIDC
    identity certified by Fulcio (`keyless.KeylessSigner`)."""

    @property
    def identity(self) -> str:
        """Who signs: a key id or a certificate identity; shown in reports."""
        ...

    def sign(self, payload: bytes) -> dict[str, str]:
        """The layer annotations carrying a signature over exactly these bytes."""
        ...

    def sign_envelope(self, statement: bytes) -> tuple[bytes, dict[str, str]]:
        """A DSSE envelope over an in-toto statement, and its `.att` layer annotations."""
        ...

    def verifier(self) -> Verifier: ...


class Verifier(Protocol):
    def verifies(self, payload: bytes, annotations: Mapping[str, str]) -> bool: ...

    def problem(self, payload: bytes, annotations: Mapping[str, str]) -> str | None:
        """Why the layer's signature does not hold for `payload`, or None when it does."""
        ...

    def signer_of(self, payload: bytes, annotations: Mapping[str, str]) -> str | None:
        """Who signed the layer, when its signature holds; else None."""
        ...

    @property
    def identity(self) -> str: ...


def _signature_bytes(annotations: Mapping[str, str]) -> bytes | None:
    encoded = annotations.get(SIGNATURE_ANNOTATION)
    if not encoded:
        return None
    try:
        return base64.b64decode(encoded, validate=True)
    except binascii.Error:
        return None


@dataclass(frozen=True)
class KeyVerifier:
    public_key: ec.EllipticCurvePublicKey

    @property
    def identity(self) -> str:
        return key_id(self.public_key)

    def verifies(self, payload: bytes, annotations: Mapping[str, str]) -> bool:
        return self.problem(payload, annotations) is None

    def problem(self, payload: bytes, annotations: Mapping[str, str]) -> str | None:
        signature = _signature_bytes(annotations)
        if signature is None:
            return "no signature"
        try:
            self.public_key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return "signature does not verify with the key"
        return None

    def signer_of(self, payload: bytes, annotations: Mapping[str, str]) -> str | None:
        return self.identity if self.verifies(payload, annotations) else None


@dataclass(frozen=True)
class KeySigner:
    private_key: ec.EllipticCurvePrivateKey

    @property
    def identity(self) -> str:
        return key_id(self.private_key.public_key())

    def sign(self, payload: bytes) -> dict[str, str]:
        signature = self.private_key.sign(payload, ec.ECDSA(hashes.SHA256()))
        return {SIGNATURE_ANNOTATION: base64.b64encode(signature).decode()}

    def verifier(self) -> KeyVerifier:
        return KeyVerifier(self.private_key.public_key())

    def sign_envelope(self, statement: bytes) -> tuple[bytes, dict[str, str]]:
        """A DSSE envelope over this in-toto statement (the signature covers its encoding),
        and the `.att` layer annotations cosign writes for a key (an empty signature)."""
        signature = self.private_key.sign(
            pae(IN_TOTO_PAYLOAD_TYPE, statement), ec.ECDSA(hashes.SHA256())
        )
        envelope = envelope_bytes(IN_TOTO_PAYLOAD_TYPE, statement, [signature])
        return envelope, {SIGNATURE_ANNOTATION: ""}


@dataclass(frozen=True)
class SignedLayer:
    """A signature layer cip made: its descriptor and the payload blob it needs."""

    descriptor: Descriptor
    payload: bytes


def sign_layer(signer: Signer, payload: bytes) -> SignedLayer:
    annotations = signer.sign(payload)
    descriptor = Descriptor(
        SIMPLE_SIGNING_MEDIA_TYPE, compute_digest(payload), len(payload), annotations=annotations
    )
    return SignedLayer(descriptor, payload)


@dataclass
class KnownPayloads:
    """Payload bytes cip knows by digest, so a layer's signer can be named without a fetch.

    Merges ask "was this layer signed by a key we know?" to avoid adding a second signature of
    the same payload by the same key (ECDSA signatures differ every time).
    """

    verifiers: Sequence[Verifier]
    payloads: dict[str, bytes] = field(default_factory=dict)

    def add(self, payload: bytes) -> None:
        self.payloads[compute_digest(payload)] = payload

    def signer_of(self, layer: Descriptor) -> str | None:
        payload = self.payloads.get(layer.digest)
        if payload is None:
            return None
        for verifier in self.verifiers:
            signer = verifier.signer_of(payload, layer.annotations)
            if signer is not None:
                return signer
        return None
