"""OIDC identity tokens for keyless signing, from where upstream's jobs keep them.

`--identity-token` takes the token itself, a file holding it, or `-` for standard input;
`SIGSTORE_ID_TOKEN` holds the token itself; `--signer-account` mints one for a Google service
account through IAM Credentials `generateIdToken` (audience `sigstore`), as kpromo does.

A token file is read again whenever a fresh certificate is needed, because the systems that
write one (Kubernetes projected tokens, CI runners) rotate it; a minted token is minted again.
A token that cannot be read or is no JWT is a usage error at start-up; an expired one fails the
images it was needed for (checked when signing), so the copy still happens.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from cip.errors import SigningError, UsageError

TOKEN_ENV = "SIGSTORE_ID_TOKEN"
AUDIENCE = "sigstore"
MAX_TOKEN = 64 * 1024
# IAM Credentials' REST root; tests point it at a local server speaking the same shape.
IAM_CREDENTIALS_ENV = "CIP_IAM_CREDENTIALS_URL"
IAM_CREDENTIALS_URL = "https://iamcredentials.googleapis.com"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"


class TokenSource(Protocol):
    """Gives a current identity token; called again for every fresh certificate."""

    @property
    def description(self) -> str: ...

    def fetch(self) -> str: ...


def claims(token: str) -> dict[str, Any] | None:
    """The (unverified) claims of a JWT, or None when it is not one.

    Only Fulcio verifies a token's signature; a client just forwards it, so reading the claims
    is base64 and JSON, not a JWT library's verification.
    """
    parts = token.strip().split(".")
    if len(parts) != 3:
        return None
    body = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        decoded = json.loads(base64.urlsafe_b64decode(body))
    except (binascii.Error, ValueError):
        return None
    return decoded if isinstance(decoded, dict) else None


def check_token(token: str, where: str) -> dict[str, Any]:
    """The claims of a token fit for Fulcio (expiry aside: see `check_expiry`)."""
    found = claims(token)
    if found is None:
        raise UsageError(f"{where}: not an OIDC identity token (a JWT)")
    missing = [c for c in ("iss", "sub", "aud", "exp") if c not in found]
    if missing:
        raise UsageError(f"{where}: the identity token has no {', '.join(missing)} claim")
    audience = found["aud"]
    if AUDIENCE not in (audience if isinstance(audience, list) else [audience]):
        raise UsageError(f"{where}: the identity token's audience is {audience!r}, not 'sigstore'")
    return found


def check_expiry(token: str, where: str, *, now: float | None = None) -> None:
    found = claims(token) or {}
    expiry = found.get("exp")
    moment = time.time() if now is None else now
    if isinstance(expiry, int | float) and expiry <= moment:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expiry))
        raise SigningError(f"the identity token from {where} expired at {stamp}; give a fresh one")


@dataclass(frozen=True)
class FixedToken:
    """A token given once: on the command line, in the environment, or on standard input."""

    token: str
    description: str

    def fetch(self) -> str:
        return self.token


@dataclass(frozen=True)
class TokenFile:
    """A token file, read again at every fetch (rotated by whoever writes it)."""

    path: str

    @property
    def description(self) -> str:
        return f"--identity-token={self.path}"

    def fetch(self) -> str:
        try:
            with open(self.path, encoding="utf-8") as handle:
                token = handle.read(MAX_TOKEN).strip()
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or error
            raise SigningError(f"{self.description}: cannot read the token: {reason}") from None
        check_token(token, self.description)
        return token


@dataclass
class MintedToken:
    """An identity token minted for a Google service account (kpromo's `--signer-account`)."""

    account: str
    endpoint: str = field(
        default_factory=lambda: os.environ.get(IAM_CREDENTIALS_ENV, IAM_CREDENTIALS_URL)
    )

    @property
    def description(self) -> str:
        return f"--signer-account={self.account}"

    def fetch(self) -> str:
        try:
            import google.auth  # type: ignore[import-not-found, unused-ignore]
            from google.auth.transport.requests import (  # type: ignore[import-not-found, unused-ignore]
                AuthorizedSession,
            )
        except ImportError:
            raise SigningError(
                f"{self.description} needs google-auth: "
                "pip install 'container-image-promoter[google]'"
            ) from None
        url = (
            f"{self.endpoint.rstrip('/')}/v1/projects/-/serviceAccounts/"
            f"{self.account}:generateIdToken"
        )
        try:
            source, _ = google.auth.default(scopes=[CLOUD_PLATFORM])
            response = AuthorizedSession(source).post(
                url, json={"audience": AUDIENCE, "includeEmail": True}, timeout=60
            )
        except Exception as error:  # google-auth raises many types; none may carry a secret
            raise SigningError(
                f"{self.description}: no identity token could be minted "
                f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
            ) from None
        if response.status_code != 200:
            raise SigningError(
                f"{self.description}: IAM Credentials answered {response.status_code} to "
                f"generateIdToken: {response.text[:200]}"
            )
        try:
            token = response.json()["token"]
        except (ValueError, KeyError, TypeError):
            raise SigningError(f"{self.description}: generateIdToken gave no token") from None
        if not isinstance(token, str):
            raise SigningError(f"{self.description}: generateIdToken gave no token")
        check_token(token, self.description)
        return token


def token_source(identity_token: str | None, signer_account: str | None) -> TokenSource | None:
    """Where tokens come from: `--identity-token`, `--signer-account`, `SIGSTORE_ID_TOKEN`."""
    if identity_token is not None and signer_account is not None:
        raise UsageError("give --identity-token or --signer-account, not both")
    if signer_account is not None:
        if "@" not in signer_account:
            raise UsageError(f"--signer-account={signer_account}: not a service account email")
        return MintedToken(signer_account)
    if identity_token is None:
        value = os.environ.get(TOKEN_ENV)
        if not value:
            return None
        check_token(value.strip(), TOKEN_ENV)
        return FixedToken(value.strip(), TOKEN_ENV)
    if identity_token == "-":
        token = sys.stdin.read(MAX_TOKEN).strip()
        check_token(token, "--identity-token=- (standard input)")
        return FixedToken(token, "--identity-token=- (standard input)")
    if claims(identity_token) is not None:
        check_token(identity_token, "--identity-token")
        return FixedToken(identity_token.strip(), "--identity-token")
    if not os.path.exists(identity_token):
        raise UsageError(
            f"--identity-token={identity_token}: neither an identity token nor an existing file"
        )
    source = TokenFile(identity_token)
    try:
        source.fetch()
    except SigningError as error:
        raise UsageError(error.message) from None
    return source
