"""The keyless signer against a local Fulcio and Rekor, and cip's offline verifier of what it
writes: every condition of a valid legacy keyless layer, and the forgeries it must reject."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import pytest

from cip.errors import SigningError
from cip.trust.attached import (
    BUNDLE_ANNOTATION,
    CERTIFICATE_ANNOTATION,
    CHAIN_ANNOTATION,
    SIGNATURE_ANNOTATION,
)
from cip.trust.identity import IdentityPolicy
from cip.trust.instance import load_instance
from cip.trust.keyless import KeylessSigner
from cip.trust.keyless_verify import LegacyKeylessVerifier
from cip.trust.simplesigning import payload
from cip.trust.tokens import FixedToken, TokenFile
from tests.lab.sigstore_lab import IDENTITY, ISSUER, SigstoreLab, make_token

DIGEST = "sha256:" + "a" * 64
OTHER_DIGEST = "sha256:" + "b" * 64
POLICY = IdentityPolicy(identity=IDENTITY, issuer=ISSUER)


def signer_for(lab: SigstoreLab, token: str | None = None) -> KeylessSigner:
    instance = load_instance(str(lab.trust_config))
    return KeylessSigner(instance, FixedToken(token or make_token(), "a test token"))


def verifier_for(lab: SigstoreLab, policy: IdentityPolicy = POLICY) -> LegacyKeylessVerifier:
    return LegacyKeylessVerifier(load_instance(str(lab.trust_config)).material, policy)


@pytest.fixture(scope="module")
def signed(sigstore_lab: SigstoreLab) -> tuple[bytes, dict[str, str]]:
    data = payload("registry.k8s.io/pause", DIGEST, None)
    return data, signer_for(sigstore_lab).sign(data)


def test_a_keyless_layer_carries_what_cosign_writes_and_verifies(
    sigstore_lab: SigstoreLab, signed: tuple[bytes, dict[str, str]]
) -> None:
    data, annotations = signed
    assert set(annotations) == {
        SIGNATURE_ANNOTATION,
        CERTIFICATE_ANNOTATION,
        CHAIN_ANNOTATION,
        BUNDLE_ANNOTATION,
    }
    assert annotations[CERTIFICATE_ANNOTATION].startswith("-----BEGIN CERTIFICATE-----")
    assert annotations[CHAIN_ANNOTATION].count("BEGIN CERTIFICATE") == 1  # the mock's root
    rekor = json.loads(annotations[BUNDLE_ANNOTATION])
    assert list(rekor) == ["SignedEntryTimestamp", "Payload"]
    assert list(rekor["Payload"]) == ["body", "integratedTime", "logIndex", "logID"]
    body = json.loads(base64.b64decode(rekor["Payload"]["body"]))
    assert body["kind"] == "hashedrekord"
    assert verifier_for(sigstore_lab).problem(data, annotations) is None
    assert verifier_for(
        sigstore_lab, IdentityPolicy(identity_regexp=r"^https://cip\.test/", issuer_regexp="cip")
    ).verifies(data, annotations)


def test_the_verifier_rejects_a_tampered_payload_and_another_digest(
    sigstore_lab: SigstoreLab, signed: tuple[bytes, dict[str, str]]
) -> None:
    data, annotations = signed
    verifier = verifier_for(sigstore_lab)
    tampered = data.replace(b"pause", b"pausE")
    assert "does not verify over the payload" in (verifier.problem(tampered, annotations) or "")
    other = payload("registry.k8s.io/pause", OTHER_DIGEST, None)
    assert verifier.problem(other, annotations) is not None


def test_the_verifier_rejects_another_identity_or_issuer(
    sigstore_lab: SigstoreLab, signed: tuple[bytes, dict[str, str]]
) -> None:
    data, annotations = signed
    someone = IdentityPolicy(identity="https://cip.test/other@refs/heads/main", issuer=ISSUER)
    problem = verifier_for(sigstore_lab, someone).problem(data, annotations)
    assert problem is not None and IDENTITY in problem
    elsewhere = IdentityPolicy(identity=IDENTITY, issuer="https://accounts.google.com")
    problem = verifier_for(sigstore_lab, elsewhere).problem(data, annotations)
    assert problem is not None and "issuer" in problem and ISSUER in problem
    regexp = IdentityPolicy(identity_regexp="^https://cip.test/other", issuer_regexp=".")
    assert not verifier_for(sigstore_lab, regexp).verifies(data, annotations)


def test_the_verifier_rejects_a_flipped_set_and_the_set_of_another_entry(
    sigstore_lab: SigstoreLab, signed: tuple[bytes, dict[str, str]]
) -> None:
    data, annotations = signed
    verifier = verifier_for(sigstore_lab)
    rekor = json.loads(annotations[BUNDLE_ANNOTATION])
    raw = bytearray(base64.b64decode(rekor["SignedEntryTimestamp"]))
    raw[len(raw) // 2] ^= 0x01
    rekor["SignedEntryTimestamp"] = base64.b64encode(bytes(raw)).decode()
    flipped = {**annotations, BUNDLE_ANNOTATION: json.dumps(rekor)}
    assert "signed entry timestamp" in (verifier.problem(data, flipped) or "")
    # A second signature by the same identity: its SET is valid, but for its own entry.
    other_data = payload("registry.k8s.io/pause", OTHER_DIGEST, None)
    other = signer_for(sigstore_lab).sign(other_data)
    assert verifier.verifies(other_data, other)
    foreign = {**annotations, BUNDLE_ANNOTATION: other[BUNDLE_ANNOTATION]}
    assert "Rekor entry is for another" in (verifier.problem(data, foreign) or "")


def test_the_verifier_rejects_a_certificate_from_another_fulcio(
    sigstore_lab: SigstoreLab, other_sigstore_lab: SigstoreLab
) -> None:
    data = payload("registry.k8s.io/pause", DIGEST, None)
    annotations = signer_for(other_sigstore_lab).sign(data)
    assert verifier_for(other_sigstore_lab).verifies(data, annotations)
    problem = verifier_for(sigstore_lab).problem(data, annotations)
    assert problem is not None and "does not chain to a Fulcio root" in problem


def test_a_long_run_takes_a_fresh_certificate_and_rereads_the_token_file(
    sigstore_lab: SigstoreLab, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(make_token(subject=IDENTITY, run="first"))
    instance = load_instance(str(sigstore_lab.trust_config))
    # A margin longer than the certificate's ten minutes: every signature needs a fresh one.
    signer = KeylessSigner(instance, TokenFile(str(token_file)), refresh_margin=timedelta(hours=1))
    before = sigstore_lab.stats()["certificates"]
    signer.sign(b"one")
    token_file.write_text(make_token(subject="https://cip.test/rotated@refs/heads/main"))
    annotations = signer.sign(b"two")
    stats = sigstore_lab.stats()
    assert stats["certificates"] == before + 2
    assert stats["subjects"][-1] == "https://cip.test/rotated@refs/heads/main"
    rotated = IdentityPolicy(identity="https://cip.test/rotated@refs/heads/main", issuer=ISSUER)
    assert verifier_for(sigstore_lab, rotated).verifies(b"two", annotations)


def test_signatures_within_a_certificate_lifetime_share_one_certificate(
    sigstore_lab: SigstoreLab,
) -> None:
    signer = signer_for(sigstore_lab)
    before = sigstore_lab.stats()
    first = signer.sign(b"one")
    second = signer.sign(b"two")
    after = sigstore_lab.stats()
    assert after["certificates"] == before["certificates"] + 1
    assert after["entries"] == before["entries"] + 2
    assert first[CERTIFICATE_ANNOTATION] == second[CERTIFICATE_ANNOTATION]


def test_an_expired_token_is_a_signing_error_naming_it(sigstore_lab: SigstoreLab) -> None:
    signer = signer_for(sigstore_lab, make_token(lifetime=-60))
    before = sigstore_lab.stats()["certificates"]
    with pytest.raises(SigningError, match="identity token from a test token expired at"):
        signer.sign(b"anything")
    assert sigstore_lab.stats()["certificates"] == before
