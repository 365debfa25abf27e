"""Offline verification of a legacy keyless `.sig` layer, on `cryptography` alone.

sigstore-python verifies only entries with an inclusion proof and checkpoint; cosign's `.sig`
layer carries the signed entry timestamp (SET) alone, so no library here verifies it offline
and cip does it itself. A layer is valid only when every one of these holds:

1. the signature verifies over the payload bytes with the leaf certificate's key;
2. the leaf chains to a Fulcio authority of the trusted root, at the Rekor `integratedTime`;
3. its embedded SCT verifies with a CT log key of the trusted root (RFC 6962 §3.2);
4. KeyUsage has digitalSignature and ExtendedKeyUsage codeSigning;
5. the identity policy holds (SAN and issuer extension; see `identity.py`);
6. the SET verifies with the Rekor key named by the entry's logID, over the canonical JSON
   (RFC 8785) of `{body, integratedTime, logID, logIndex}`;
7. the logged entry (hashedrekord) is this one: the SHA-256 of this payload, this signature and
   this certificate, so a valid SET of another entry does not vouch for this layer.

A keyless `.att` layer is checked the same way (`envelope_problem`), with the DSSE envelope's
signature over its pre-authentication encoding, and a logged `dsse` entry (Rekor's dsse 0.0.1,
what sigstore clients log for envelopes) naming this payload, this signature and this
certificate. cosign's older `intoto` entries are not read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import rfc8785
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from cip.trust.attached import BUNDLE_ANNOTATION, CERTIFICATE_ANNOTATION, SIGNATURE_ANNOTATION
from cip.trust.dsse import Envelope, pae
from cip.trust.identity import IdentityPolicy, certificate_policy
from cip.trust.instance import LogKey, TrustMaterial


class Rejected(Exception):
    """Why a layer is not a valid keyless signature."""


def _b64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise Rejected(f"{what} is missing")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise Rejected(f"{what} is not base64") from None


def _verify_ecdsa(key: object, signature: bytes, data: bytes) -> bool:
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return False
    try:
        key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True, slots=True)
class _Entry:
    set: bytes
    body: str
    integrated_time: int
    log_index: int
    log_id: str

    @classmethod
    def parse(cls, text: str | None) -> _Entry:
        if not text:
            raise Rejected("no Rekor bundle annotation (the signature was not logged)")
        try:
            document = json.loads(text)
            payload = document["Payload"]
            entry = cls(
                _b64(document["SignedEntryTimestamp"], "the signed entry timestamp"),
                payload["body"],
                payload["integratedTime"],
                payload["logIndex"],
                payload["logID"],
            )
        except (ValueError, KeyError, TypeError):
            raise Rejected("the Rekor bundle annotation is malformed") from None
        if not (
            isinstance(entry.body, str)
            and isinstance(entry.integrated_time, int)
            and isinstance(entry.log_index, int)
            and isinstance(entry.log_id, str)
        ):
            raise Rejected("the Rekor bundle annotation is malformed")
        return entry

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.integrated_time, UTC)


def _key_for(keys: tuple[LogKey, ...], log_id: bytes, moment: datetime) -> LogKey | None:
    for key in keys:
        if key.log_id == log_id and key.window.contains(moment):
            return key
    return None


def _sct_verifies(
    leaf: x509.Certificate, issuer: x509.Certificate, keys: tuple[LogKey, ...]
) -> bool:
    """Whether one embedded SCT verifies with a CT log key (the digitally-signed struct of RFC
    6962 §3.2 for a precertificate entry; cryptography parses the SCT, not its signature)."""
    try:
        scts = leaf.extensions.get_extension_for_class(
            x509.PrecertificateSignedCertificateTimestamps
        ).value
    except x509.ExtensionNotFound:
        return False
    issuer_key = issuer.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    tbs = leaf.tbs_precertificate_bytes
    for sct in scts:
        stamp = sct.timestamp.replace(tzinfo=UTC)
        millis = (stamp - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
        signed = (
            bytes([0, 0])  # version v1, signature type certificate_timestamp
            + millis.to_bytes(8, "big")
            + (1).to_bytes(2, "big")  # precert_entry
            + hashlib.sha256(issuer_key).digest()
            + len(tbs).to_bytes(3, "big")
            + tbs
            + len(sct.extension_bytes).to_bytes(2, "big")
            + sct.extension_bytes
        )
        key = _key_for(keys, sct.log_id, stamp)
        if key is not None and _verify_ecdsa(key.key, sct.signature, signed):
            return True
    return False


def _chain(
    leaf: x509.Certificate, material: TrustMaterial, moment: datetime
) -> list[x509.Certificate]:
    """The verified chain above `leaf` (issuer first), built from the trusted root's authorities
    valid at `moment`; Fulcio's EKU (codeSigning) is checked separately, as sigstore does."""
    trusted = [c for a in material.authorities if a.window.contains(moment) for c in a.chain]
    if not trusted:
        raise Rejected(
            f"no Fulcio authority of the trusted root was valid at {moment:%Y-%m-%dT%H:%M:%SZ}"
        )
    ca_policy = ExtensionPolicy.webpki_defaults_ca().may_be_present(
        x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, None
    )
    ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, None
    )
    verifier = (
        PolicyBuilder()
        .store(Store(trusted))
        .time(moment)
        .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
        .build_client_verifier()
    )
    try:
        return list(verifier.verify(leaf, []).chain[1:])
    except (VerificationError, x509.UnsupportedGeneralNameType, ValueError) as error:
        raise Rejected(
            "the certificate does not chain to a Fulcio root of the trusted root at "
            f"{moment:%Y-%m-%dT%H:%M:%SZ} ({error})"
        ) from None


def _logged_entry_problem(
    body: bytes, payload: bytes, signature: bytes, leaf: x509.Certificate
) -> str | None:
    try:
        entry: Any = json.loads(body)
        spec = entry["spec"]
        kind = entry["kind"]
        digest = spec["data"]["hash"]
        logged_signature = base64.b64decode(spec["signature"]["content"])
        logged_certificate = base64.b64decode(spec["signature"]["publicKey"]["content"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        return "the Rekor entry is not a hashedrekord entry"
    if kind != "hashedrekord":
        return f"the Rekor entry is a {kind} entry, not hashedrekord"
    if (
        digest.get("algorithm") != "sha256"
        or digest.get("value") != hashlib.sha256(payload).hexdigest()
    ):
        return "the Rekor entry is for another payload"
    if logged_signature != signature:
        return "the Rekor entry is for another signature"
    try:
        logged = x509.load_pem_x509_certificate(logged_certificate)
    except ValueError:
        return "the Rekor entry's certificate cannot be read"
    if logged != leaf:
        return "the Rekor entry is for another certificate"
    return None


def _logged_envelope_problem(
    body: bytes, payload: bytes, signature: bytes, leaf: x509.Certificate
) -> str | None:
    try:
        entry: Any = json.loads(body)
        kind = entry["kind"]
        spec = entry["spec"]
        digest = spec["payloadHash"]
        logged = [
            (base64.b64decode(s["signature"]), base64.b64decode(s["verifier"]))
            for s in spec["signatures"]
        ]
    except (ValueError, KeyError, TypeError, binascii.Error):
        return "the Rekor entry is not a dsse entry"
    if kind != "dsse":
        return f"the Rekor entry is a {kind} entry, not dsse"
    if (
        digest.get("algorithm") != "sha256"
        or digest.get("value") != hashlib.sha256(payload).hexdigest()
    ):
        return "the Rekor entry is for another payload"
    for logged_signature, verifier in logged:
        if logged_signature != signature:
            continue
        try:
            if x509.load_pem_x509_certificate(verifier) == leaf:
                return None
        except ValueError:
            continue
    return "the Rekor entry is for another signature or certificate"


EntryCheck = Callable[[bytes, bytes, bytes, x509.Certificate], str | None]


@dataclass(frozen=True)
class LegacyKeylessVerifier:
    """Verifies legacy keyless `.sig` layers; `policy` None accepts any identity and names each
    layer by its certificate's (used to recognise cip's own signatures)."""

    material: TrustMaterial
    policy: IdentityPolicy | None

    @property
    def identity(self) -> str:
        return self.policy.description if self.policy is not None else "any keyless identity"

    def verifies(self, payload: bytes, annotations: Mapping[str, str]) -> bool:
        return self.problem(payload, annotations) is None

    def signer_of(self, payload: bytes, annotations: Mapping[str, str]) -> str | None:
        try:
            leaf = self._check(payload, annotations)
        except Rejected:
            return None
        if self.policy is not None:
            return self.policy.description
        return certificate_policy(leaf).description

    def problem(self, payload: bytes, annotations: Mapping[str, str]) -> str | None:
        """Why the layer is not a valid keyless signature of `payload`, or None when it is."""
        try:
            self._check(payload, annotations)
        except Rejected as rejected:
            return str(rejected)
        return None

    def envelope_problem(self, envelope: Envelope, annotations: Mapping[str, str]) -> str | None:
        """Why a keyless `.att` layer (its envelope and annotations) is not a valid signature,
        or None when one of the envelope's signatures is."""
        reasons: list[str] = []
        for signature in envelope.signatures or (b"",):
            try:
                self._check(
                    envelope.payload,
                    annotations,
                    signed=pae(envelope.payload_type, envelope.payload),
                    signature=signature,
                    logged=_logged_envelope_problem,
                )
            except Rejected as rejected:
                reasons.append(str(rejected))
                continue
            return None
        return "; ".join(dict.fromkeys(reasons))

    def _check(
        self,
        payload: bytes,
        annotations: Mapping[str, str],
        *,
        signed: bytes | None = None,
        signature: bytes | None = None,
        logged: EntryCheck = _logged_entry_problem,
    ) -> x509.Certificate:
        """`signed` (default: the payload) is what the signature covers; `signature` (default:
        the layer's annotation) the signature; `logged` checks the Rekor entry against both."""
        text = annotations.get(CERTIFICATE_ANNOTATION)
        if not text:
            raise Rejected("no certificate (not a keyless signature)")
        try:
            leaf = x509.load_pem_x509_certificate(text.encode())
        except ValueError:
            raise Rejected("the certificate annotation is not a PEM certificate") from None
        if signature is None:
            signature = _b64(annotations.get(SIGNATURE_ANNOTATION), "the signature")
        if not _verify_ecdsa(leaf.public_key(), signature, payload if signed is None else signed):
            raise Rejected(
                "the signature does not verify over the payload with the certificate's key"
            )
        entry = _Entry.parse(annotations.get(BUNDLE_ANNOTATION))
        chain = _chain(leaf, self.material, entry.time)
        if not chain or not _sct_verifies(leaf, chain[0], self.material.ct_keys):
            raise Rejected("the certificate's embedded SCT does not verify with a CT log key")
        self._usage(leaf)
        if self.policy is not None:
            problem = self.policy.problem(leaf)
            if problem is not None:
                raise Rejected(problem)
        self._entry(entry, payload, signature, leaf, logged)
        return leaf

    @staticmethod
    def _usage(leaf: x509.Certificate) -> None:
        try:
            usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
            extended = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            raise Rejected("the certificate lacks KeyUsage or ExtendedKeyUsage") from None
        if not usage.digital_signature:
            raise Rejected("the certificate's KeyUsage lacks digitalSignature")
        if ExtendedKeyUsageOID.CODE_SIGNING not in extended:
            raise Rejected("the certificate's ExtendedKeyUsage lacks codeSigning")

    def _entry(
        self,
        entry: _Entry,
        payload: bytes,
        signature: bytes,
        leaf: x509.Certificate,
        logged: EntryCheck,
    ) -> None:
        try:
            log_id = bytes.fromhex(entry.log_id)
        except ValueError:
            raise Rejected("the Rekor bundle's logID is not hex") from None
        key = _key_for(self.material.rekor_keys, log_id, entry.time)
        if key is None:
            raise Rejected(
                f"the entry was logged by a Rekor the trusted root does not name ({entry.log_id[:16]}…)"
            )
        canonical = rfc8785.dumps(
            {
                "body": entry.body,
                "integratedTime": entry.integrated_time,
                "logID": entry.log_id,
                "logIndex": entry.log_index,
            }
        )
        if not _verify_ecdsa(key.key, entry.set, canonical):
            raise Rejected("the signed entry timestamp does not verify with the Rekor key")
        problem = logged(_b64(entry.body, "the Rekor entry body"), payload, signature, leaf)
        if problem is not None:
            raise Rejected(problem)
