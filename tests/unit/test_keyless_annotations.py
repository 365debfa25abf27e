"""From a sigstore bundle to cosign's keyless `.sig` annotations, field for field."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cip.errors import SigningError
from cip.trust.attached import (
    BUNDLE_ANNOTATION,
    CERTIFICATE_ANNOTATION,
    CHAIN_ANNOTATION,
    SIGNATURE_ANNOTATION,
)
from cip.trust.keyless import TIMESTAMP_ANNOTATION, legacy_annotations


def _certificate(name: str) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(minutes=10))
        .sign(key, hashes.SHA256())
    )


def _bundle(leaf: x509.Certificate, **material: object) -> dict[str, object]:
    der = leaf.public_bytes(serialization.Encoding.DER)
    return {
        "messageSignature": {"signature": "c2lnbmF0dXJl"},
        "verificationMaterial": {
            "certificate": {"rawBytes": base64.b64encode(der).decode()},
            "tlogEntries": [
                {
                    "logIndex": "42",
                    "logId": {"keyId": base64.b64encode(bytes.fromhex("ab" * 32)).decode()},
                    "integratedTime": "1700000000",
                    "inclusionPromise": {"signedEntryTimestamp": "U0VU"},
                    "canonicalizedBody": "Ym9keQ==",
                }
            ],
            **material,
        },
    }


def test_annotations_carry_the_signature_certificate_chain_and_rekor_entry_as_cosign_does() -> None:
    leaf, root = _certificate("leaf"), _certificate("root")
    annotations = legacy_annotations(_bundle(leaf), (root,))
    assert annotations[SIGNATURE_ANNOTATION] == "c2lnbmF0dXJl"
    assert x509.load_pem_x509_certificate(annotations[CERTIFICATE_ANNOTATION].encode()) == leaf
    assert x509.load_pem_x509_certificates(annotations[CHAIN_ANNOTATION].encode()) == [root]
    assert annotations[BUNDLE_ANNOTATION] == (
        '{"SignedEntryTimestamp":"U0VU","Payload":{"body":"Ym9keQ==","integratedTime":1700000000,'
        f'"logIndex":42,"logID":"{"ab" * 32}"}}}}'
    )
    assert TIMESTAMP_ANNOTATION not in annotations


def test_a_timestamp_authority_adds_the_rfc3161_annotation() -> None:
    stamped = _bundle(
        _certificate("leaf"),
        timestampVerificationData={"rfc3161Timestamps": [{"signedTimestamp": "VFNB"}]},
    )
    annotations = legacy_annotations(stamped, ())
    assert json.loads(annotations[TIMESTAMP_ANNOTATION]) == {"SignedRFC3161Timestamp": "VFNB"}


def test_an_entry_without_a_signed_entry_timestamp_cannot_be_written_in_the_legacy_format() -> None:
    bundle = _bundle(_certificate("leaf"))
    material = bundle["verificationMaterial"]
    assert isinstance(material, dict)
    del material["tlogEntries"][0]["inclusionPromise"]
    with pytest.raises(SigningError, match="needs a v1 log"):
        legacy_annotations(bundle, ())
