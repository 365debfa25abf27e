"""Keyless signing as upstream does it: an ephemeral key, a Fulcio certificate for the signer's
OIDC identity, and the signature logged in Rekor, through sigstore-python.

sigstore-python returns a sigstore bundle; cosign's legacy `.sig` layer carries the same facts
as annotations: the signature (DER, base64), the leaf certificate and its chain (PEM), the Rekor
entry with its signed entry timestamp (`dev.sigstore.cosign/bundle`), and an RFC 3161 timestamp
when the signing config has a timestamp authority. The signed bytes are the payload itself
(`sign_artifact` hashes it with SHA-256 and signs the digest, as cosign does).

Certificates live about ten minutes. sigstore-python's signer reuses one key and certificate
while `cache=True`; with `cache=False`, version 4.5.1 makes a new key at every use, so the
signature would not match the certificate: cip keeps the cache on and replaces the whole signer
(a fresh token, a fresh certificate) shortly before the certificate expires.

sigstore-python's HTTP client blocks: the signing machinery calls `sign` from worker threads,
so one lock guards the certificate's renewal.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sigstore.dsse import Statement
from sigstore.models import Bundle
from sigstore.oidc import IdentityError, IdentityToken
from sigstore.sign import Signer as SigstoreSigner
from sigstore.sign import SigningContext

from cip.errors import SigningError
from cip.trust.attached import (
    BUNDLE_ANNOTATION,
    CERTIFICATE_ANNOTATION,
    CHAIN_ANNOTATION,
    SIGNATURE_ANNOTATION,
)
from cip.trust.dsse import envelope_bytes
from cip.trust.identity import certificate_policy
from cip.trust.instance import SigstoreInstance
from cip.trust.keyless_verify import LegacyKeylessVerifier
from cip.trust.tokens import TokenSource, check_expiry

TIMESTAMP_ANNOTATION = "dev.sigstore.cosign/rfc3161timestamp"
REFRESH_MARGIN = timedelta(minutes=2)


def pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def legacy_annotations(
    bundle_json: dict[str, Any], chain: tuple[x509.Certificate, ...]
) -> dict[str, str]:
    """cosign's `.sig` layer annotations for a sigstore bundle of a message signature (or, for
    a DSSE envelope, of an `.att` layer: its signature lives in the envelope, so the signature
    annotation is empty, as cosign writes it)."""
    material = bundle_json["verificationMaterial"]
    leaf = x509.load_der_x509_certificate(base64.b64decode(material["certificate"]["rawBytes"]))
    entry = material["tlogEntries"][0]
    promise = entry.get("inclusionPromise") or {}
    if "signedEntryTimestamp" not in promise:
        raise SigningError("Rekor gave no signed entry timestamp; the legacy format needs a v1 log")
    # cosign's bundle annotation (pkg/cosign/bundle/rekor.go), fields in its Go order.
    rekor = {
        "SignedEntryTimestamp": promise["signedEntryTimestamp"],
        "Payload": {
            "body": entry["canonicalizedBody"],
            "integratedTime": int(entry["integratedTime"]),
            "logIndex": int(entry["logIndex"]),
            "logID": base64.b64decode(entry["logId"]["keyId"]).hex(),
        },
    }
    message = bundle_json.get("messageSignature")
    annotations = {
        SIGNATURE_ANNOTATION: message["signature"] if message is not None else "",
        CERTIFICATE_ANNOTATION: pem(leaf),
        CHAIN_ANNOTATION: "".join(pem(c) for c in chain),
        BUNDLE_ANNOTATION: json.dumps(rekor, separators=(",", ":")),
    }
    stamps = (material.get("timestampVerificationData") or {}).get("rfc3161Timestamps") or []
    if stamps:
        annotations[TIMESTAMP_ANNOTATION] = json.dumps(
            {"SignedRFC3161Timestamp": stamps[0]["signedTimestamp"]}, separators=(",", ":")
        )
    return annotations


@dataclass
class _Current:
    signer: SigstoreSigner
    certificate: x509.Certificate | None = None  # known after the first signature


class KeylessSigner:
    """A `Signer` whose identity is the OIDC token's, certified by Fulcio, logged in Rekor."""

    def __init__(
        self,
        instance: SigstoreInstance,
        tokens: TokenSource,
        *,
        refresh_margin: timedelta = REFRESH_MARGIN,
    ) -> None:
        self.instance = instance
        self.tokens = tokens
        self.refresh_margin = refresh_margin
        self._lock = threading.Lock()
        self._current: _Current | None = None
        self._context: SigningContext | None = None
        self.certificates = 0  # certificates requested from Fulcio

    def _signer(self) -> _Current:
        with self._lock:
            current = self._current
            if current is not None and (
                current.certificate is None
                or datetime.now(UTC) < current.certificate.not_valid_after_utc - self.refresh_margin
            ):
                return current
            token = self.tokens.fetch()
            check_expiry(token, self.tokens.description)
            try:
                if self._context is None:
                    self._context = SigningContext.from_trust_config(self.instance.config)
                identity = IdentityToken(token)
                signer = SigstoreSigner(identity, self._context, cache=True)
            except IdentityError as error:
                raise SigningError(f"{self.tokens.description}: {error}") from None
            except Exception as error:  # sigstore-python's own types are private (see _reason)
                raise SigningError(f"no certificate from Fulcio: {_reason(error)}") from None
            self.certificates += 1
            self._current = _Current(signer)
            return self._current

    def _bundle(self, sign: Any) -> dict[str, Any]:
        current = self._signer()
        try:
            bundle: Bundle = sign(current.signer)
        except Exception as error:  # sigstore-python's own types are private (see _reason)
            raise SigningError(f"signing failed: {_reason(error)}") from None
        current.certificate = bundle.signing_certificate
        parsed: dict[str, Any] = json.loads(bundle.to_json())
        return parsed

    @property
    def identity(self) -> str:
        """The certificate's identity; asks Fulcio for a certificate when there is none yet."""
        current = self._signer()
        certificate = current.certificate
        if certificate is None:
            certificate = self._certificate_of(current)
        return certificate_policy(certificate).description

    def _certificate_of(self, current: _Current) -> x509.Certificate:
        # sigstore-python holds the cached certificate privately; it is public in every bundle.
        certificate: x509.Certificate = current.signer._signing_cert()
        current.certificate = certificate
        return certificate

    def sign(self, payload: bytes) -> dict[str, str]:
        """The keyless `.sig` layer annotations for this payload (one Rekor entry)."""
        parsed = self._bundle(lambda signer: signer.sign_artifact(payload))
        leaf = x509.load_der_x509_certificate(
            base64.b64decode(parsed["verificationMaterial"]["certificate"]["rawBytes"])
        )
        chain = self.instance.material.issuing_chain(leaf)
        if chain is None:
            raise SigningError("Fulcio's certificate chains to no authority of the trusted root")
        return legacy_annotations(parsed, chain)

    def sign_statement(self, statement: bytes) -> bytes:
        """A sigstore bundle (JSON bytes) of a DSSE envelope over this in-toto statement."""
        parsed = self._bundle(lambda signer: signer.sign_dsse(Statement(statement)))
        return json.dumps(parsed, separators=(",", ":")).encode()

    def sign_envelope(self, statement: bytes) -> tuple[bytes, dict[str, str]]:
        """A DSSE envelope over this in-toto statement and the keyless `.att` layer annotations
        (certificate, chain, the logged dsse entry), one Rekor entry."""
        parsed = self._bundle(lambda signer: signer.sign_dsse(Statement(statement)))
        content = parsed["dsseEnvelope"]
        envelope = envelope_bytes(
            content["payloadType"],
            base64.b64decode(content["payload"]),
            [base64.b64decode(s["sig"]) for s in content["signatures"]],
        )
        leaf = x509.load_der_x509_certificate(
            base64.b64decode(parsed["verificationMaterial"]["certificate"]["rawBytes"])
        )
        chain = self.instance.material.issuing_chain(leaf)
        if chain is None:
            raise SigningError("Fulcio's certificate chains to no authority of the trusted root")
        return envelope, legacy_annotations(parsed, chain)

    def own_statement(self, data: bytes) -> bytes | None:
        """The statement a bundle signs when it verifies and this signer's identity signed it."""
        from cip.trust.bundle_verify import BundleVerifier

        verifier = BundleVerifier(self.instance.config.trusted_root, policy=None)
        try:
            statement = verifier.verified_statement(data)
        except ValueError:
            return None
        signer = certificate_policy(Bundle.from_json(data).signing_certificate).description
        return statement if signer == self.identity else None

    def owns_bundle(self, data: bytes, digest: str) -> bool:
        """Whether a bundle is a valid signature of `digest` by this signer's identity."""
        from cip.trust.bundle_verify import BundleVerifier

        verifier = BundleVerifier(self.instance.config.trusted_root, policy=None)
        signer = verifier.signer_of(data, digest)
        return signer is not None and signer == self.identity

    def verifier(self) -> LegacyKeylessVerifier:
        """Verifies what this signer writes, naming each layer by its certificate's identity."""
        return LegacyKeylessVerifier(self.instance.material, policy=None)


def _reason(error: BaseException) -> str:
    """The first line of a failure's message.

    sigstore-python reports failures with exception classes of private modules
    (FulcioClientError, RekorClientError, ExpiredCertificate, ExpiredIdentity) beside its public
    `Error`, and requests' errors are OSErrors: every one of them fails the images being signed,
    so they are caught as `Exception` and named here.
    """
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
