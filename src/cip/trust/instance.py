"""Which sigstore instance cip signs with and trusts: `--sigstore-trust-config FILE`, or the
public-good instance (its trusted root and signing config through sigstore's TUF repository).

A trust config (`application/vnd.dev.sigstore.clienttrustconfig.v0.1+json`) holds a trusted root
(Fulcio certificate chains, Rekor and CT log keys) and a signing config (the Fulcio, Rekor and
timestamp URLs). sigstore-python signs with it; cip's own legacy verifier reads the trusted root's
keys and chains from the same document (`TrustMaterial`).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sigstore.errors import Error as SigstoreError
from sigstore.models import ClientTrustConfig
from sigstore_models.common.v1 import TimeRange
from sigstore_models.trustroot.v1 import TransparencyLogInstance, TrustedRoot

from cip.errors import UsageError

MAX_TRUST_CONFIG = 4 * 1024 * 1024
TRUST_CONFIG_FLAG = "--sigstore-trust-config"


@dataclass(frozen=True, slots=True)
class Window:
    """When a key or certificate authority of the trusted root may be used."""

    start: datetime | None
    end: datetime | None

    @classmethod
    def of(cls, valid_for: TimeRange | None) -> Window:
        if valid_for is None:
            return cls(None, None)
        return cls(valid_for.start, valid_for.end)

    def contains(self, moment: datetime) -> bool:
        return (self.start is None or self.start <= moment) and (
            self.end is None or moment <= self.end
        )


@dataclass(frozen=True, slots=True)
class LogKey:
    """A Rekor or CT log key, named by the SHA-256 of its SubjectPublicKeyInfo (its log id)."""

    log_id: bytes
    key: ec.EllipticCurvePublicKey
    window: Window


@dataclass(frozen=True, slots=True)
class Authority:
    """A Fulcio certificate authority: its chain, leaf-most first, and when it was trusted."""

    chain: tuple[x509.Certificate, ...]
    window: Window


@dataclass(frozen=True, slots=True)
class TrustMaterial:
    """What offline verification of a legacy keyless signature needs from the trusted root."""

    authorities: tuple[Authority, ...]
    rekor_keys: tuple[LogKey, ...]
    ct_keys: tuple[LogKey, ...]

    @classmethod
    def from_trusted_root(cls, root: TrustedRoot) -> TrustMaterial:
        authorities = tuple(
            Authority(
                tuple(
                    x509.load_der_x509_certificate(c.raw_bytes)
                    for c in authority.cert_chain.certificates
                ),
                Window.of(authority.valid_for),
            )
            for authority in root.certificate_authorities
        )
        return cls(authorities, _log_keys(root.tlogs), _log_keys(root.ctlogs))

    def issuing_chain(self, leaf: x509.Certificate) -> tuple[x509.Certificate, ...] | None:
        """The chain of the authority that issued `leaf` (cosign's chain annotation)."""
        for authority in self.authorities:
            if authority.chain and _issued_by(leaf, authority.chain[0]):
                return authority.chain
        return None


def _issued_by(leaf: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        leaf.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _log_keys(logs: list[TransparencyLogInstance]) -> tuple[LogKey, ...]:
    keys: list[LogKey] = []
    for log in logs:
        raw = log.public_key.raw_bytes
        if raw is None:
            continue
        key = serialization.load_der_public_key(raw)
        if not isinstance(key, ec.EllipticCurvePublicKey):
            continue  # Rekor v2's ed25519 keys sign checkpoints, never a SET
        keys.append(LogKey(hashlib.sha256(raw).digest(), key, Window.of(log.public_key.valid_for)))
    return tuple(keys)


@dataclass(frozen=True)
class SigstoreInstance:
    """A loaded trust config: sigstore-python's object, and the material cip verifies with."""

    config: ClientTrustConfig
    material: TrustMaterial
    source: str  # the file, or "the public-good instance"


def load_instance(path: str | None, *, legacy_log: bool = True) -> SigstoreInstance:
    """The trust config of `--sigstore-trust-config`, else the public-good instance.

    `legacy_log`: sign with a Rekor v1 log only, whose entries carry the signed entry
    timestamp that cosign's `.sig` bundle annotation needs (Rekor v2 gives none).
    """
    if path is None:
        try:
            config = ClientTrustConfig.production()
        except SigstoreError as error:
            raise UsageError(
                f"the public-good sigstore trust root could not be fetched ({error}); "
                f"give {TRUST_CONFIG_FLAG} FILE"
            ) from None
        source = "the public-good instance"
    else:
        config = _read_config(path)
        source = path
    if legacy_log:
        config.force_tlog_version = 1
    # sigstore-python keeps the parsed document private; its fields are the public
    # trusted-root format, read here for cip's own verifier.
    inner = config._inner.trusted_root
    return SigstoreInstance(config, TrustMaterial.from_trusted_root(inner), source)


def _read_config(path: str) -> ClientTrustConfig:
    where = f"{TRUST_CONFIG_FLAG}={path}"
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_TRUST_CONFIG + 1)
    except OSError as error:
        raise UsageError(f"{where}: cannot read it: {error.strerror or error}") from None
    if len(data) > MAX_TRUST_CONFIG:
        raise UsageError(f"{where}: larger than {MAX_TRUST_CONFIG} bytes; not a trust config")
    try:
        config = ClientTrustConfig.from_json(data.decode("utf-8"))
        config.trusted_root  # noqa: B018  (validates the media type)
    except (ValueError, UnicodeDecodeError, SigstoreError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(f"{where}: not a sigstore client trust config ({first})") from None
    return config


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
