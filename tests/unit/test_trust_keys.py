"""Signing keys as users hold them: PEM from openssl, cosign.key (cosign's own vectors)."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest

from cip.errors import ExitCode, UsageError
from cip.trust.keys import key_id, load_private_key, load_public_key
from cip.trust.signer import KeySigner, KeyVerifier
from tests.trust.keyfiles import (
    DATA,
    VECTOR_PASSWORD,
    encrypt_cosign_key,
    openssl_keypair,
    openssl_verifies,
)

VECTORS = ("pemcosignkey", "pemcosigneckey", "pemsigstorekey")


@pytest.mark.parametrize("name", VECTORS)
def test_cosign_encrypted_key_vectors_load_with_their_password(name: str) -> None:
    key = load_private_key(str(DATA / f"{name}.key"), password=VECTOR_PASSWORD)
    signer = KeySigner(key)
    annotations = signer.sign(b"payload")
    assert signer.verifier().verifies(b"payload", annotations)
    assert not signer.verifier().verifies(b"payloaD", annotations)


def test_cosign_key_password_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COSIGN_PASSWORD", VECTOR_PASSWORD)
    assert load_private_key(str(DATA / "pemsigstorekey.key")) is not None


def test_wrong_or_missing_password_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(DATA / "pemsigstorekey.key")
    with pytest.raises(UsageError, match="wrong password in COSIGN_PASSWORD") as wrong:
        load_private_key(path, password="hell")
    assert wrong.value.exit_code is ExitCode.BAD_INPUT
    assert path in wrong.value.message
    monkeypatch.delenv("COSIGN_PASSWORD", raising=False)
    with pytest.raises(UsageError, match="needs COSIGN_PASSWORD"):
        load_private_key(path)


def test_openssl_pkcs8_key_signs_what_openssl_verifies(tmp_path: Path) -> None:
    pair = openssl_keypair(tmp_path)
    signer = KeySigner(load_private_key(str(pair.private)))
    payload = b'{"critical":{}}'
    annotations = signer.sign(payload)
    [signature] = annotations.values()
    assert openssl_verifies(pair.public, payload, signature, tmp_path / "ok")
    assert not openssl_verifies(pair.public, payload + b" ", signature, tmp_path / "tampered")
    public = load_public_key(str(pair.public))
    assert key_id(public) == signer.identity
    assert KeyVerifier(public).verifies(payload, annotations)


def test_our_cosign_key_envelope_round_trips(tmp_path: Path) -> None:
    pair = openssl_keypair(tmp_path)
    encrypted = encrypt_cosign_key(pair.private, "s3cret", tmp_path / "cosign.key")
    key = load_private_key(str(encrypted), password="s3cret")
    assert key_id(key.public_key()) == key_id(load_public_key(str(pair.public)))


@pytest.mark.parametrize(
    "reference",
    ["gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k", "awskms:///alias/x",
     "hashivault://transit", "azurekms://vault/key", "k8s://ns/secret"],
)  # fmt: skip
def test_kms_references_are_refused_with_a_message(reference: str) -> None:
    with pytest.raises(UsageError, match="keys are not supported"):
        load_private_key(reference)


def test_unusable_key_files_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(UsageError, match="cannot read the key") as error:
        load_private_key(str(missing))
    assert str(missing) in error.value.message
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key\n")
    with pytest.raises(UsageError, match="not a PEM private key"):
        load_private_key(str(garbage))
    rsa = tmp_path / "rsa.pem"
    rsa.write_bytes(
        subprocess.run(
            ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"],
            check=True, capture_output=True,
        ).stdout
    )  # fmt: skip
    with pytest.raises(UsageError, match="P-256"):
        load_private_key(str(rsa))
    broken = tmp_path / "broken.key"
    text = (DATA / "pemsigstorekey.key").read_text().splitlines()
    envelope = json.dumps({"kdf": {"name": "argon2"}}).encode()
    body = base64.b64encode(envelope).decode()
    broken.write_text(f"{text[0]}\n{body}\n{text[-1]}\n")
    with pytest.raises(UsageError, match="not a usable cosign key"):
        load_private_key(str(broken), password="x")
