"""DSSE envelopes (in-toto attestations, as cosign attaches them in `.att` layers).

An envelope is `{payloadType, payload (base64), signatures: [{keyid, sig (base64)}]}`; each
signature is over the pre-authentication encoding `DSSEv1 <len> <type> <len> <payload>`
(DSSE protocol.md), here ECDSA P-256 over SHA-256 as cosign's key mode signs it. Written here:
the encoding is one line, and the libraries that carry it (securesystemslib) key signatures by
keyid, while cosign writes an empty keyid for every signature.

`envelope_bytes` writes an envelope as cosign does (field order payloadType, payload,
signatures; no spaces), so cip's `.att` layers look like cosign's.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

ENVELOPE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    """The bytes a DSSE signature covers (DSSE v1 pre-authentication encoding)."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


@dataclass(frozen=True, slots=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[bytes, ...]

    def signed_by(self, key: ec.EllipticCurvePublicKey) -> bool:
        message = pae(self.payload_type, self.payload)
        for signature in self.signatures:
            try:
                key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
            except InvalidSignature:
                continue
            return True
        return False


def parse_envelope(data: bytes) -> Envelope:
    """ValueError naming what is wrong when `data` is no DSSE envelope."""
    try:
        document = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError("not a DSSE envelope (not JSON)") from None
    if not isinstance(document, dict):
        raise ValueError("not a DSSE envelope (not a JSON object)")
    payload_type, payload = document.get("payloadType"), document.get("payload")
    signatures = document.get("signatures")
    if not isinstance(payload_type, str) or not isinstance(payload, str):
        raise ValueError("not a DSSE envelope (payloadType and payload are strings)")
    if not isinstance(signatures, list):
        raise ValueError("not a DSSE envelope (signatures is a list)")
    try:
        body = base64.b64decode(payload, validate=True)
        sigs = tuple(
            base64.b64decode(s["sig"], validate=True)
            for s in signatures
            if isinstance(s, dict) and isinstance(s.get("sig"), str)
        )
    except binascii.Error:
        raise ValueError("not a DSSE envelope (payload or a signature is not base64)") from None
    return Envelope(payload_type, body, sigs)


def envelope_bytes(payload_type: str, payload: bytes, signatures: list[bytes]) -> bytes:
    """The envelope as cosign writes it: an empty keyid for every signature."""
    document = {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": "", "sig": base64.b64encode(s).decode()} for s in signatures],
    }
    return json.dumps(document, separators=(",", ":")).encode()
