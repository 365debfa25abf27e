"""Key files for tests: made with the openssl command, and cosign.key envelopes around them.

Keys come from openssl (not from the code under test) so a test that loads them checks cip
against an independent producer; `encrypt_cosign_key` writes the envelope format cosign writes
(go-securesystemslib `encrypted`: scrypt, then nacl/secretbox), with a low scrypt cost accepted
by cosign to keep tests fast.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

from nacl.secret import SecretBox

DATA = Path(__file__).resolve().parents[1] / "data" / "cosign"
VECTOR_PASSWORD = "hello"


@dataclass(frozen=True)
class KeyPair:
    private: Path  # PKCS#8 PEM, unencrypted
    public: Path  # PKIX PEM


def openssl_keypair(folder: Path, name: str = "key") -> KeyPair:
    folder.mkdir(parents=True, exist_ok=True)
    private, public = folder / f"{name}.pem", folder / f"{name}.pub"
    curve = subprocess.run(
        ["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    subprocess.run(
        ["openssl", "pkcs8", "-topk8", "-nocrypt", "-out", str(private)],
        input=curve, check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        ["openssl", "pkey", "-in", str(private), "-pubout", "-out", str(public)],
        check=True, capture_output=True,
    )  # fmt: skip
    return KeyPair(private, public)


def encrypt_cosign_key(pkcs8_pem: Path, password: str, out: Path, cost: int = 32768) -> Path:
    der = subprocess.run(
        ["openssl", "pkcs8", "-topk8", "-nocrypt", "-outform", "DER", "-in", str(pkcs8_pem)],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    salt, nonce = os.urandom(32), os.urandom(24)
    secret = hashlib.scrypt(password.encode(), salt=salt, n=cost, r=8, p=1, dklen=32,
                            maxmem=256 * 1024 * 1024)  # fmt: skip
    ciphertext = SecretBox(secret).encrypt(der, nonce).ciphertext
    envelope = {
        "kdf": {"name": "scrypt", "params": {"N": cost, "r": 8, "p": 1},
                "salt": base64.b64encode(salt).decode()},
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(ciphertext).decode(),
    }  # fmt: skip
    body = "\n".join(textwrap.wrap(base64.b64encode(json.dumps(envelope).encode()).decode(), 64))
    label = "ENCRYPTED SIGSTORE PRIVATE KEY"
    out.write_text(f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n")
    return out


def openssl_verifies(public: Path, payload: bytes, signature_b64: str, folder: Path) -> bool:
    """`openssl dgst -sha256 -verify`: the check a consumer without cosign can run."""
    folder.mkdir(parents=True, exist_ok=True)
    payload_file, signature_file = folder / "payload.json", folder / "signature.der"
    payload_file.write_bytes(payload)
    signature_file.write_bytes(base64.b64decode(signature_b64))
    done = subprocess.run(
        ["openssl", "dgst", "-sha256", "-verify", str(public), "-signature",
         str(signature_file), str(payload_file)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.returncode == 0 and "Verified OK" in done.stdout
