"""A manifest's `service-account`: Google registries logged in as that account.

Upstream promotes into gcr.io / Artifact Registry as a named service account. cip does the
same through google-auth (the optional `google` extra), impersonating the account from the
ambient credentials (`gcloud auth application-default login`, workload identity, or
`GOOGLE_APPLICATION_CREDENTIALS`). The credential is on-demand: it is only fetched when a
registry refuses anonymous access or a write needs it, so dry runs against public registries
never need google-auth, a network round-trip to Google, or any ambient credential.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from cip.transport.credentials import Credential, CredentialError, Secret

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
# gcr.io and Artifact Registry take an OAuth2 access token as the password of this user.
ACCESS_TOKEN_USER = "oauth2accesstoken"

AccessTokenSource = Callable[[str], Awaitable[tuple[str, float]]]  # account -> (token, expiry)


async def google_auth_token(account: str) -> tuple[str, float]:
    """An access token for `account`, impersonated from the ambient Google credentials."""
    try:
        import google.auth  # type: ignore[import-not-found, unused-ignore]
        import google.auth.transport.requests  # type: ignore[import-not-found, unused-ignore]
        from google.auth import impersonated_credentials  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise CredentialError(
            f"service-account {account} needs google-auth: "
            "pip install 'container-image-promoter[google]', or log in another way "
            "(CIP_AUTH_<HOST>, or a docker credential helper such as docker-credential-gcloud)"
        ) from None

    def fetch() -> tuple[str, float]:
        source, _ = google.auth.default(scopes=[CLOUD_PLATFORM])
        target = impersonated_credentials.Credentials(
            source_credentials=source,
            target_principal=account,
            target_scopes=[CLOUD_PLATFORM],
            lifetime=3600,
        )
        target.refresh(google.auth.transport.requests.Request())
        expiry = target.expiry.timestamp() if target.expiry else time.time() + 3600
        return str(target.token), float(expiry)

    try:
        # google-auth's transport is blocking; keep it off the event loop.
        return await asyncio.to_thread(fetch)
    except Exception as exc:  # google-auth raises many types; none may carry a token
        raise CredentialError(
            f"service-account {account}: google-auth could not get a token ({type(exc).__name__})"
        ) from None


@dataclass
class GoogleServiceAccount:
    """A `CredentialSource` for the hosts a manifest's `service-account` applies to."""

    account: str
    hosts: frozenset[str]
    token_source: AccessTokenSource = google_auth_token
    description: str = field(init=False)
    on_demand: bool = True  # never asked before a registry refuses anonymous access

    def __post_init__(self) -> None:
        self.description = f"Google service account {self.account}"

    async def get(self, host: str) -> Credential | None:
        if host not in self.hosts:
            return None
        token, _expiry = await self.token_source(self.account)
        return Credential(ACCESS_TOKEN_USER, Secret(token), source=self.description)
