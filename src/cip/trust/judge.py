"""Judging what staging attached to a digest against the run's verification policy.

Signatures: `.sig` layers (simple signing) and cosign v3 signature bundles. Provenance: SLSA
statements (`https://slsa.dev/provenance/v0.2` or `…/v1`) in `.att` DSSE layers or in bundle
referrers; other predicates (SBOMs, vulnerability scans, promotion records) are not looked at.
What a piece claims to be is read before it is verified only to route it; a piece counts once
its signature verifies with the policy (`--verify-key`, or the keyless identity policy) and its
claims name this digest.

As with `cosign verify`, one valid signature is enough: several signers may attach to one
image. When pieces are present and none is valid, the image fails (*invalid*), with the reason
of each; when none is present, it fails only if the policy requires one (*missing*).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from cip.trust.attached import CERTIFICATE_ANNOTATION
from cip.trust.bundles import SIGN_PREDICATE_TYPE
from cip.trust.dsse import IN_TOTO_PAYLOAD_TYPE, Envelope, parse_envelope
from cip.trust.evidence import MAX_EXAMINED, Evidence, Piece
from cip.trust.signer import KeyVerifier
from cip.trust.simplesigning import claims_problem, parse_payload
from cip.trust.statements import (
    SLSA_PREDICATE_TYPES,
    ProvenancePolicy,
    Statement,
    first_lines,
    parse_statement,
)

if TYPE_CHECKING:
    # Loaded by the keyless policy's maker: a key policy never loads sigstore.
    from cip.trust.keyless_verify import LegacyKeylessVerifier

State = Literal["valid", "invalid", "missing"]


class BundleChecker(Protocol):
    """sigstore-python's verification of a certificate bundle (`bundle_verify.BundleVerifier`)."""

    def verified_statement(self, data: bytes) -> bytes: ...


@dataclass(frozen=True)
class StagingPolicy:
    """Whose signatures count, and what a run requires of staging."""

    keys: tuple[KeyVerifier, ...] = ()
    keyless: LegacyKeylessVerifier | None = None  # keyless `.sig`/`.att` layers
    bundles: BundleChecker | None = None  # keyless sigstore bundles
    provenance: ProvenancePolicy = field(default_factory=ProvenancePolicy)
    require_signature: bool = False
    require_provenance: bool = False

    @property
    def description(self) -> str:
        parts = [f"key {k.identity}" for k in self.keys]
        if self.keyless is not None:
            parts.append(self.keyless.identity)
        return " or ".join(parts) or "no signer"


@dataclass(frozen=True, slots=True)
class Outcome:
    state: State
    reason: str


@dataclass(frozen=True, slots=True)
class Judgement:
    signature: Outcome
    provenance: Outcome


def _layer_problem(policy: StagingPolicy, piece: Piece, digest: str) -> str | None:
    try:
        problem = claims_problem(parse_payload(piece.data), digest)
    except ValueError as error:
        problem = str(error)
    if problem is not None:
        return problem
    if CERTIFICATE_ANNOTATION in piece.annotations:
        if policy.keyless is None:
            return "a keyless signature, and no --certificate-identity policy to check it"
        return policy.keyless.problem(piece.data, piece.annotations)
    if not policy.keys:
        return "signed with a key, and no --verify-key to check it"
    reasons = [key.problem(piece.data, piece.annotations) for key in policy.keys]
    if None in reasons:
        return None
    return "; ".join(dict.fromkeys(r for r in reasons if r is not None))


def _envelope_problem(policy: StagingPolicy, envelope: Envelope, piece: Piece) -> str | None:
    if CERTIFICATE_ANNOTATION in piece.annotations:
        if policy.keyless is None:
            return "a keyless attestation, and no --certificate-identity policy to check it"
        return policy.keyless.envelope_problem(envelope, piece.annotations)
    if not policy.keys:
        return "signed with a key, and no --verify-key to check it"
    if any(envelope.signed_by(key.public_key) for key in policy.keys):
        return None
    return "the envelope's signature does not verify with the key"


def _bundle_envelope(document: Any) -> Envelope:
    content = document.get("dsseEnvelope") if isinstance(document, dict) else None
    if not isinstance(content, dict):
        raise ValueError("the bundle holds no DSSE envelope")
    try:
        return Envelope(
            str(content["payloadType"]),
            base64.b64decode(content["payload"], validate=True),
            tuple(base64.b64decode(s["sig"], validate=True) for s in content["signatures"]),
        )
    except (KeyError, TypeError, binascii.Error):
        raise ValueError("the bundle's DSSE envelope is malformed") from None


def _bundle_statement(policy: StagingPolicy, piece: Piece) -> bytes:
    """The statement a bundle signs, once verified; ValueError why not.

    Bundles certified by Fulcio go to sigstore-python. Key bundles (`publicKey` material,
    which sigstore-python refuses) are checked here: the envelope's signature over its
    encoding with the policy's key, without a transparency log, as `cosign verify --key
    --insecure-ignore-tlog` does.
    """
    try:
        document = json.loads(piece.data)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("not a sigstore bundle (not JSON)") from None
    material = document.get("verificationMaterial") if isinstance(document, dict) else None
    if isinstance(material, dict) and "publicKey" in material:
        envelope = _bundle_envelope(document)
        if not policy.keys:
            raise ValueError("a key bundle, and no --verify-key to check it")
        if not any(envelope.signed_by(key.public_key) for key in policy.keys):
            raise ValueError("the bundle's signature does not verify with the key")
        if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE:
            raise ValueError(f"the bundle signs a {envelope.payload_type} payload")
        return envelope.payload
    if policy.bundles is None:
        raise ValueError("a keyless bundle, and no --certificate-identity policy to check it")
    return policy.bundles.verified_statement(piece.data)


def _claimed_type(statement_bytes: bytes) -> str | None:
    try:
        return parse_statement(statement_bytes).predicate_type
    except ValueError:
        return None


def _bundle_claim(piece: Piece) -> str | None:
    """The predicate type a bundle's statement claims, before anything is verified."""
    try:
        return _claimed_type(_bundle_envelope(json.loads(piece.data)).payload)
    except (ValueError, UnicodeDecodeError):
        return None


@dataclass
class _Tally:
    present: int = 0
    reasons: list[str] = field(default_factory=list)
    valid: str | None = None  # where the first valid piece is

    def judge(self, piece: Piece, problem: str | None) -> None:
        self.present += 1
        if problem is None:
            self.valid = self.valid or piece.where
        else:
            self.reasons.append(f"{piece.where}: {problem}")

    def outcome(self, kind: str, required: bool, unexamined: int) -> Outcome:
        if self.valid is not None:
            return Outcome("valid", f"{kind} verified ({self.valid})")
        if self.present:
            more = f" (the first {MAX_EXAMINED} of each kind were read)" if unexamined else ""
            return Outcome("invalid", f"no {kind} verifies: {first_lines(self.reasons)}{more}")
        return Outcome("missing", f"no {kind} in staging" + ("" if required else " (not required)"))


def judge(evidence: Evidence, digest: str, policy: StagingPolicy) -> Judgement:
    """The signature and provenance outcomes of one digest (CPU work: verification)."""
    signatures, provenance = _Tally(), _Tally()

    def provenance_problem(statement_bytes: bytes) -> str | None:
        try:
            statement: Statement = parse_statement(statement_bytes)
        except ValueError as error:
            return str(error)
        return policy.provenance.problem(statement, digest)

    for piece in evidence.signatures:
        signatures.judge(piece, _layer_problem(policy, piece, digest))
    for piece in evidence.envelopes:
        try:
            envelope = parse_envelope(piece.data)
        except ValueError:
            continue
        if _claimed_type(envelope.payload) not in SLSA_PREDICATE_TYPES:
            continue
        problem = _envelope_problem(policy, envelope, piece)
        provenance.judge(piece, problem or provenance_problem(envelope.payload))
    for piece in evidence.bundles:
        claim = _bundle_claim(piece)
        if claim != SIGN_PREDICATE_TYPE and claim not in SLSA_PREDICATE_TYPES:
            continue
        try:
            statement_bytes = _bundle_statement(policy, piece)
        except ValueError as error:
            (signatures if claim == SIGN_PREDICATE_TYPE else provenance).judge(piece, str(error))
            continue
        if claim == SIGN_PREDICATE_TYPE:
            signatures.judge(piece, _signature_statement_problem(statement_bytes, digest))
        else:
            provenance.judge(piece, provenance_problem(statement_bytes))
    return Judgement(
        signatures.outcome("signature", policy.require_signature, evidence.unexamined),
        provenance.outcome("provenance", policy.require_provenance, evidence.unexamined),
    )


def _signature_statement_problem(statement_bytes: bytes, digest: str) -> str | None:
    try:
        statement = parse_statement(statement_bytes)
    except ValueError as error:
        return str(error)
    if statement.predicate_type != SIGN_PREDICATE_TYPE:
        return f"the signed statement's predicate is {statement.predicate_type}"
    if not statement.names(digest):
        return f"the signature is for {', '.join(statement.digests) or 'no digest'}, not {digest}"
    return None
