"""Signing and verification keys, read the way cosign writes them.

`--signing-key` takes a PEM private key (PKCS#8 or SEC1, NIST P-256) or cosign's encrypted
`cosign.key`: PEM `ENCRYPTED SIGSTORE PRIVATE KEY` (older files: `ENCRYPTED COSIGN PRIVATE
KEY`) whose body is JSON naming scrypt and nacl/secretbox, with the password in
`COSIGN_PASSWORD` (go-securesystemslib's `encrypted` package defines the format). The
secretbox is PyNaCl's, scrypt and the key parsing are `cryptography`'s; only the small JSON
envelope around them is read here, because no library reads that envelope.

Every problem with a key is the user's to fix, so it is a UsageError (exit 2) naming the file,
and never shows a secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cip.errors import UsageError

PASSWORD_ENV = "COSIGN_PASSWORD"
ENCRYPTED_LABELS = ("ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY")
# cosign's key references that name a key held elsewhere (pkg/signature/kms, pkcs11key).
KMS_PREFIXES = ("gcpkms://", "awskms://", "azurekms://", "hashivault://", "k8s://", "pkcs11:")
# go-securesystemslib decrypts with exactly these scrypt costs (r=8, p=1).
SCRYPT_COSTS = frozenset({32768, 65536, 131072})
SCRYPT_MAX_MEMORY = 256 * 1024 * 1024  # 128 * r * N bytes for N=131072, with room to spare
MAX_KEY_FILE = 64 * 1024


def refuse_kms(reference: str, flag: str) -> None:
    if reference.startswith(KMS_PREFIXES):
        scheme = reference.split(":", 1)[0]
        raise UsageError(
            f"{flag}={reference}: {scheme} keys are not supported; give a PEM private key file "
            "or cosign's encrypted cosign.key"
        )


def _read(path: str, flag: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_KEY_FILE + 1)
    except OSError as error:
        raise UsageError(f"{flag}={path}: cannot read the key: {error.strerror or error}") from None
    if len(data) > MAX_KEY_FILE:
        raise UsageError(f"{flag}={path}: not a key file (larger than {MAX_KEY_FILE} bytes)")
    return data


def _pem_body(data: bytes, label: str) -> bytes | None:
    text = data.decode("ascii", errors="replace")
    begin, end = f"-----BEGIN {label}-----", f"-----END {label}-----"
    start = text.find(begin)
    if start < 0:
        return None
    stop = text.find(end, start)
    if stop < 0:
        return None
    body = "".join(text[start + len(begin) : stop].split())
    try:
        return base64.b64decode(body, validate=True)
    except binascii.Error:
        return None


def _field(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            raise ValueError(f"no {'.'.join(path)}")
        obj = obj[key]
    return obj


def decrypt_cosign_key(envelope: bytes, password: bytes) -> bytes:
    """The DER private key inside cosign's encrypted envelope; ValueError when it is not one,
    PermissionError for a wrong password."""
    from nacl.exceptions import CryptoError
    from nacl.secret import SecretBox

    document = json.loads(envelope)
    if _field(document, "kdf", "name") != "scrypt":
        raise ValueError(f"unsupported key derivation {_field(document, 'kdf', 'name')!r}")
    if _field(document, "cipher", "name") != "nacl/secretbox":
        raise ValueError(f"unsupported cipher {_field(document, 'cipher', 'name')!r}")
    cost, block, parallel = (_field(document, "kdf", "params", k) for k in ("N", "r", "p"))
    if cost not in SCRYPT_COSTS or block != 8 or parallel != 1:
        raise ValueError(f"unsupported scrypt parameters N={cost} r={block} p={parallel}")
    salt = base64.b64decode(_field(document, "kdf", "salt"))
    nonce = base64.b64decode(_field(document, "cipher", "nonce"))
    ciphertext = base64.b64decode(_field(document, "ciphertext"))
    secret = hashlib.scrypt(
        password, salt=salt, n=cost, r=block, p=parallel, dklen=32, maxmem=SCRYPT_MAX_MEMORY
    )
    try:
        return SecretBox(secret).decrypt(ciphertext, nonce)
    except CryptoError:
        raise PermissionError("wrong password") from None


def _p256_private(key: object, where: str) -> ec.EllipticCurvePrivateKey:
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        kind = getattr(getattr(key, "curve", None), "name", type(key).__name__)
        raise UsageError(f"{where}: a NIST P-256 (ECDSA) key is needed, this is {kind}")
    return key


def load_private_key(
    path: str, *, flag: str = "--signing-key", password: str | None = None
) -> ec.EllipticCurvePrivateKey:
    """A P-256 private key from a PEM file or cosign.key (password: `COSIGN_PASSWORD`)."""
    refuse_kms(path, flag)
    where = f"{flag}={path}"
    data = _read(path, flag)
    for label in ENCRYPTED_LABELS:
        envelope = _pem_body(data, label)
        if envelope is None:
            continue
        secret = password if password is not None else os.environ.get(PASSWORD_ENV)
        if secret is None:
            raise UsageError(f"{where}: an encrypted cosign key needs {PASSWORD_ENV}")
        try:
            der = decrypt_cosign_key(envelope, secret.encode())
        except PermissionError:
            raise UsageError(f"{where}: wrong password in {PASSWORD_ENV}") from None
        except (ValueError, TypeError, binascii.Error) as error:
            raise UsageError(f"{where}: not a usable cosign key ({error})") from None
        try:
            return _p256_private(serialization.load_der_private_key(der, None), where)
        except (ValueError, UnsupportedAlgorithm) as error:
            raise UsageError(f"{where}: the decrypted key cannot be read ({error})") from None
    if b"ENCRYPTED PRIVATE KEY" in data:
        raise UsageError(f"{where}: password-protected PKCS#8 is not supported; use cosign.key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise UsageError(f"{where}: not a PEM private key or cosign.key ({error})") from None
    return _p256_private(key, where)


def load_public_key(path: str, *, flag: str = "--verify-key") -> ec.EllipticCurvePublicKey:
    """A P-256 public key from a PKIX `PUBLIC KEY` PEM file, as `cosign.pub` is."""
    refuse_kms(path, flag)
    where = f"{flag}={path}"
    data = _read(path, flag)
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as error:
        raise UsageError(f"{where}: not a PEM public key ({error})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise UsageError(f"{where}: a NIST P-256 (ECDSA) public key is needed")
    return key


def public_key_pem(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_id(key: ec.EllipticCurvePublicKey) -> str:
    """A stable name for a public key: the SHA-256 of its DER SubjectPublicKeyInfo."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(der).hexdigest()
