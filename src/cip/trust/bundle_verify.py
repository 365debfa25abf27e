"""Verifying a cosign v3 signature bundle of an image digest with sigstore-python's `Verifier`.

The bundle's DSSE envelope, certificate, transparency log entry (with its inclusion proof) and
the identity policy are sigstore-python's to check; cip then checks that the signed statement
is cosign's signing statement and names this digest among its subjects, because a valid bundle
for another image vouches for nothing here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sigstore.errors import Error as SigstoreError
from sigstore.models import Bundle, TrustedRoot
from sigstore.verify import Verifier

from cip.trust.bundles import SIGN_PREDICATE_TYPE
from cip.trust.dsse import IN_TOTO_PAYLOAD_TYPE
from cip.trust.identity import IdentityPolicy, certificate_policy


@dataclass
class BundleVerifier:
    """Checks bundles against a trusted root; `policy` None names the certificate's identity."""

    trusted_root: TrustedRoot
    policy: IdentityPolicy | None

    def __post_init__(self) -> None:
        self._verifier = Verifier(trusted_root=self.trusted_root)

    def problem(self, data: bytes, digest: str) -> str | None:
        """Why the bundle is no valid signature of `digest`, or None when it is."""
        try:
            payload = self.verified_statement(data)
        except ValueError as error:
            return str(error)
        return _statement_problem(payload, digest)

    def verified_statement(self, data: bytes) -> bytes:
        """The in-toto statement the bundle's DSSE envelope signs, once the bundle verifies
        (certificate, transparency log entry, identity policy, signature); ValueError why not."""
        try:
            bundle = Bundle.from_json(data)
        except (SigstoreError, ValueError) as error:
            raise ValueError(f"not a sigstore bundle ({_first_line(error)})") from None
        policy = self.policy or certificate_policy(bundle.signing_certificate)
        try:
            payload_type, payload = self._verifier.verify_dsse(bundle, policy)
        except (SigstoreError, ValueError) as error:
            raise ValueError(f"the bundle does not verify: {_first_line(error)}") from None
        if payload_type != IN_TOTO_PAYLOAD_TYPE:
            raise ValueError(f"the bundle signs a {payload_type} payload, not an in-toto statement")
        return payload

    def signer_of(self, data: bytes, digest: str) -> str | None:
        if self.problem(data, digest) is not None:
            return None
        if self.policy is not None:
            return self.policy.description
        return certificate_policy(Bundle.from_json(data).signing_certificate).description


def _statement_problem(payload: bytes, digest: str) -> str | None:
    try:
        statement: Any = json.loads(payload)
        subjects = statement["subject"]
        predicate_type = statement["predicateType"]
    except (ValueError, KeyError, TypeError):
        return "the signed statement is malformed"
    if predicate_type != SIGN_PREDICATE_TYPE:
        return f"the signed statement's predicate is {predicate_type}, not {SIGN_PREDICATE_TYPE}"
    algorithm, _, encoded = digest.partition(":")
    for subject in subjects if isinstance(subjects, list) else []:
        if isinstance(subject, dict) and (subject.get("digest") or {}).get(algorithm) == encoded:
            return None
    return f"the signed statement names no subject {digest}"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
