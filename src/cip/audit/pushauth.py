"""Who may call /pubsub: Google-signed OIDC tokens of allowed service accounts.

A push subscription with authentication sends `Authorization: Bearer <JWT>`, signed by Google
for the subscription's service account. The token is checked with google-auth (signature
against Google's certificates, `exp`, `iat`), then its claims here: `iss` is Google's, `aud`
is this service's audience, `email_verified` is true and `email` is one of the allowed
accounts. Without the email check any Google account could mint a token for our audience, so
at least one account must be allowed.

Refusals are data (`PushRefused`: a reason for the metric label and a message for the log);
no message ever contains the token, which is a credential until it expires.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from google.auth import exceptions as google_exceptions
from google.auth import jwt, transport
from google.oauth2 import id_token

log = logging.getLogger(__name__)

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"  # what Pub/Sub's tokens use
GOOGLE_ISSUERS = frozenset({"https://accounts.google.com", "accounts.google.com"})
CLOCK_SKEW_SECONDS = 10  # clocks of Google and this host may differ a little
DEFAULT_CERTS_MAX_AGE = 300.0  # when the endpoint sends no Cache-Control max-age


class Refusal(StrEnum):
    """Why a push was refused: the `reason` label of `cip_audit_unauthorized_total`."""

    MISSING = "missing-token"
    MALFORMED = "malformed-token"
    SIGNATURE = "bad-signature"
    EXPIRED = "expired"
    ISSUER = "wrong-issuer"
    AUDIENCE = "wrong-audience"
    EMAIL_UNVERIFIED = "email-not-verified"
    EMAIL = "email-not-allowed"
    CERTIFICATES = "certificates-unavailable"  # our problem, not the caller's: 503

    @property
    def status(self) -> int:
        return 503 if self is Refusal.CERTIFICATES else 401


REFUSALS = tuple(Refusal)


class PushRefused(Exception):
    def __init__(self, reason: Refusal, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class _Cached:
    response: transport.Response
    fresh_until: float


class CachedCertificates(transport.Request):
    """google-auth's transport, with the certificate document kept while Google says it may be.

    google-auth fetches the certificates on every verification; Google's endpoint answers
    with `Cache-Control: max-age=…` (hours), so one fetch serves every push until then. When a
    refetch fails, the copy held is used a while longer (Google publishes a new key well
    before it signs with it), and the failure is logged.
    """

    def __init__(
        self, inner: transport.Request, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.inner = inner
        self.clock = clock
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()  # one fetch at a time; verifications run in threads

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: Any = None,
        **kwargs: Any,
    ) -> transport.Response:
        with self._lock:
            cached = self._cache.get(url)
            if cached is not None and cached.fresh_until > self.clock():
                return cached.response
            try:
                response: transport.Response = self.inner(url, method="GET", timeout=timeout or 30)
            except google_exceptions.TransportError as error:
                if cached is None:
                    raise
                log.warning("cannot refresh Google's certificates from %s: %s", url, error)
                return cached.response
            if response.status == 200:
                max_age = _max_age(response.headers.get("cache-control", ""))
                self._cache[url] = _Cached(response, self.clock() + max_age)
            elif cached is not None:
                log.warning(
                    "cannot refresh Google's certificates: %s answered %d", url, response.status
                )
                return cached.response
            return response


def _max_age(cache_control: str) -> float:
    for directive in cache_control.split(","):
        name, _, value = directive.strip().partition("=")
        if name.lower() == "max-age" and value.strip().isdigit():
            return float(value.strip())
    return DEFAULT_CERTS_MAX_AGE


@dataclass(frozen=True)
class PushVerifier:
    """The checks of one service: its audience, the accounts allowed, where the keys are."""

    audience: str
    allowed_emails: Collection[str]
    certs_url: str
    request: transport.Request

    def verify(self, authorization: str | None) -> str:
        """The caller's email, or PushRefused. Blocking (it may fetch certificates)."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise PushRefused(Refusal.MISSING, "no bearer token (Authorization: Bearer <JWT>)")
        token = token.strip()
        try:
            unverified = jwt.decode(token, verify=False)
        except (ValueError, TypeError, google_exceptions.GoogleAuthError):
            raise PushRefused(Refusal.MALFORMED, "the bearer token is not a JWT") from None
        if not isinstance(unverified, dict):
            raise PushRefused(Refusal.MALFORMED, "the bearer token's claims are not an object")
        claims = self._verified(token, unverified)
        issuer = claims.get("iss")
        if issuer not in GOOGLE_ISSUERS:
            raise PushRefused(Refusal.ISSUER, f"the token's issuer {issuer!r} is not Google")
        if claims.get("aud") != self.audience:
            raise PushRefused(
                Refusal.AUDIENCE,
                f"the token is for audience {claims.get('aud')!r}, not {self.audience!r}",
            )
        email_address = claims.get("email")
        if not isinstance(email_address, str) or not email_address:
            raise PushRefused(Refusal.EMAIL, "the token names no email")
        if claims.get("email_verified") is not True:
            raise PushRefused(
                Refusal.EMAIL_UNVERIFIED, f"the token's email {email_address} is not verified"
            )
        if email_address not in self.allowed_emails:
            raise PushRefused(
                Refusal.EMAIL,
                f"{email_address} is not allowed to push (--pubsub-allowed-email)",
            )
        return email_address

    def _verified(self, token: str, unverified: Mapping[str, Any]) -> Mapping[str, Any]:
        """The claims once google-auth checked the signature, `iat` and `exp`."""
        try:
            claims = id_token.verify_token(
                token,
                self.request,
                audience=None,  # checked afterwards, with a message of our own
                certs_url=self.certs_url,
                clock_skew_in_seconds=CLOCK_SKEW_SECONDS,
            )
        except google_exceptions.TransportError as error:
            raise PushRefused(
                Refusal.CERTIFICATES,
                f"cannot fetch Google's certificates from {self.certs_url}: {_first_line(error)}",
            ) from None
        except google_exceptions.InvalidValue:
            # google-auth raises InvalidValue for time claims after the signature passed,
            # and MalformedError for a signature that does not match.
            expiry = unverified.get("exp")
            if isinstance(expiry, int | float) and expiry < time.time() - CLOCK_SKEW_SECONDS:
                raise PushRefused(
                    Refusal.EXPIRED, f"the token expired at {_when(expiry)}"
                ) from None
            raise PushRefused(
                Refusal.SIGNATURE, "the token's algorithm, key or times are not acceptable"
            ) from None
        except (ValueError, google_exceptions.GoogleAuthError):
            key = _key_id(token)
            raise PushRefused(
                Refusal.SIGNATURE,
                f"the token's signature does not match Google's certificates (key id {key})",
            ) from None
        if not isinstance(claims, Mapping):
            raise PushRefused(Refusal.MALFORMED, "the token's claims are not an object")
        return claims


def _key_id(token: str) -> str:
    try:
        header = jwt.decode_header(token)
    except (ValueError, google_exceptions.GoogleAuthError):
        return "unknown"
    kid = header.get("kid") if isinstance(header, dict) else None
    return repr(kid) if isinstance(kid, str) else "none"


def _when(timestamp: float) -> str:
    return (
        datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def google_request() -> transport.Request:
    """google-auth's requests transport behind the certificate cache."""
    import google.auth.transport.requests

    return CachedCertificates(google.auth.transport.requests.Request())
