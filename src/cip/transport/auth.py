"""Logging in to a registry: anonymous, Basic, and the Bearer token challenge.

A registry says how it wants to be spoken to in the `WWW-Authenticate` header of a 401
(distribution "Token Authentication Specification"): Basic (send credentials on every request)
or Bearer (fetch a token for a scope such as `repository:team/app:pull,push` from a realm).
cip learns the scheme from the first 401 on a host and from then on authorises requests before
sending them, so each scope costs one token fetch and no further 401s. That matters for
streamed uploads: their body cannot be sent twice, so they must carry a valid token the first
time. Tokens are cached per scope and fetched again on expiry or on a 401.

Credentials are looked up only when a registry challenges, and credentials marked on-demand (a
Google service account) only when anonymous access is refused or a write needs them, so a dry
run against public registries never needs them. Requests to any other host (a blob redirect
to storage) are sent without credentials.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import math
import re
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiohttp

from cip.errors import RegistryError
from cip.transport.challenge import Challenge, parse_challenge, request_scopes
from cip.transport.credentials import Credential, CredentialError, CredentialStore, Secret, refused
from cip.transport.responses import bytes_body, drain

if TYPE_CHECKING:
    from aiohttp import ClientRequest, ClientResponse

    from cip.transport.stack import Handler, Middleware

DEFAULT_TOKEN_SECONDS = 60  # distribution token spec: expires_in defaults to 60 s
_TOKEN = re.compile(r"[\x21-\x7e]+")  # visible ASCII, as header values and JWTs are


@dataclass(frozen=True, slots=True)
class Token:
    value: Secret
    expires_at: float
    credential: Credential | None = None  # what the token was fetched with (None: anonymous)


class Authenticator:
    """Login state for one registry endpoint, shared by its transports (http and https)."""

    def __init__(
        self,
        host: str,
        endpoint: str,
        credentials: CredentialStore | None,
        token_client: TokenClient,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = host  # as named in manifests (credentials and messages)
        self.endpoint = endpoint  # host[:port] contacted: only requests to it get credentials
        self._credentials = credentials
        self._token_client = token_client
        self._clock = clock
        self.challenge: Challenge | None = None
        self._tokens: dict[tuple[str, ...], Token] = {}
        self._locks: dict[tuple[str, ...], asyncio.Lock] = {}
        self._demanded = False  # anonymous access was refused: on-demand credentials apply
        self._basic_sent: Credential | None = None  # behind the Basic header last sent
        self._closed = False

    def __repr__(self) -> str:
        scheme = self.challenge.scheme if self.challenge else "unknown"
        return f"Authenticator({self.host!r}, scheme={scheme}, tokens={len(self._tokens)})"

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._token_client.aclose()

    async def _credential(self, *, demanded: bool) -> Credential | None:
        if self._credentials is None:
            return None
        return await self._credentials.get(self.host, demanded=demanded or self._demanded)

    async def authorize(self, request: ClientRequest) -> None:
        """Set `Authorization` if the scheme is known (pre-authorisation)."""
        if self.challenge is None:
            return
        if self.challenge.scheme == "basic":
            found = await self._credential(demanded=True)
            header = found.basic_auth() if found else None
            self._basic_sent = found if header else None
        else:
            token = await self.token(request_scopes(request.method, request.url))
            header = f"Bearer {token.value.reveal()}" if token else None
        if header:
            request.headers["Authorization"] = header

    async def unauthorized(self, request: ClientRequest, response: ClientResponse) -> bool:
        """Learn from a 401; True when sending the request again may now succeed."""
        challenge = parse_challenge(response.headers.get("www-authenticate"))
        if challenge is None:
            return False
        had = request.headers.get("authorization")
        first = self.challenge is None
        self.challenge = challenge
        if challenge.scheme == "basic":
            found = await self._credential(demanded=True)
            if found is not None and had is not None and had == found.basic_auth():
                found = await self._refresh_credential()
            return found is not None and found.basic_auth() != had
        needed = request_scopes(request.method, request.url)
        scopes = tuple(dict.fromkeys(needed + challenge.scopes))
        if had is not None:
            # The token was refused (expired early, or too narrow): anonymous is not enough.
            self._demanded = True
            self._tokens.pop(tuple(sorted(scopes)), None)
            self._tokens.pop(tuple(sorted(needed)), None)
        elif not first:
            self._demanded = True
        return await self.token(scopes) is not None

    async def _refresh_credential(self) -> Credential | None:
        if self._credentials is None:
            return None
        return await self._credentials.refresh(self.host)

    async def token(self, scopes: tuple[str, ...]) -> Token | None:
        """A cached or fresh token for `scopes` (cached per scope set, refreshed on expiry)."""
        assert self.challenge is not None
        key = tuple(sorted(scopes))
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:  # concurrent requests for one scope share one fetch
            cached = self._tokens.get(key)
            if cached is not None and cached.expires_at > self._clock():
                return cached
            token = await self._fetch(self.challenge, key)
            self._tokens[key] = token
            return token

    async def _fetch(self, challenge: Challenge, scopes: tuple[str, ...]) -> Token:
        realm = challenge.params.get("realm")
        if not realm:
            raise RegistryError(
                f"{self.host} sent a Bearer challenge without a realm", registry=self.host
            )
        writes = any(s.endswith(("push", "delete", "*")) for s in scopes)
        found = await self._credential(demanded=writes)
        status, answer = await self._ask(realm, challenge, scopes, found)
        if status in (401, 403) and not self._demanded and not writes:
            self._demanded = True  # anonymous refused: now on-demand credentials may be used
            more = await self._credential(demanded=True)
            if more is not None and more != found:
                found = more
                status, answer = await self._ask(realm, challenge, scopes, found)
        if status in (401, 403) and found is not None:
            fresh = await self._refresh_credential()  # a helper's token may have expired
            if fresh is not None and fresh != found:
                found = fresh
                status, answer = await self._ask(realm, challenge, scopes, found)
        if status != 200:
            raise self._token_error(status, found)
        try:
            body = json.loads(answer)
            value = body.get("token") or body["access_token"]
            lifetime = float(body.get("expires_in") or DEFAULT_TOKEN_SECONDS)
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError):
            raise RegistryError(
                f"token service of {self.host} answered without a token", registry=self.host
            ) from None
        if not isinstance(value, str) or not _TOKEN.fullmatch(value):
            # It goes into an Authorization header: control characters there would inject
            # headers, and aiohttp refuses them (and anything not Latin-1) with a ValueError.
            raise RegistryError(
                f"token service of {self.host} answered a token that is not printable ASCII",
                registry=self.host,
            )
        if not math.isfinite(lifetime) or lifetime <= 0:
            lifetime = DEFAULT_TOKEN_SECONDS  # nonsense lifetimes: the spec's default
        # Refresh a little early so a token never expires in flight.
        margin = min(10.0, lifetime / 10)
        return Token(Secret(value), self._clock() + lifetime - margin, found)

    async def _ask(
        self,
        realm: str,
        challenge: Challenge,
        scopes: tuple[str, ...],
        found: Credential | None,
    ) -> tuple[int, bytes]:
        """One request to the token service: its status and body."""
        service = challenge.params.get("service")
        try:
            if found is not None and found.identity_token is not None:
                # distribution "OAuth2 Token Authentication": a refresh-token grant by POST.
                form = {
                    "grant_type": "refresh_token",
                    "refresh_token": found.identity_token.reveal(),
                    "client_id": "cip",
                    **({"service": service} if service else {}),
                    **({"scope": " ".join(scopes)} if scopes else {}),
                }
                return await self._token_client.send("POST", realm, data=form)
            params = [("scope", s) for s in scopes]  # one scope parameter per scope
            if service:
                params.insert(0, ("service", service))
            basic = found.basic_auth() if found else None
            headers = {"Authorization": basic} if basic else {}
            return await self._token_client.send("GET", realm, params=params, headers=headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RegistryError(
                f"token service of {self.host} unreachable: {type(exc).__name__}",
                registry=self.host,
                retryable=True,
            ) from exc

    def refusal(self, method: str, path: str, authorization: str | None) -> CredentialError | None:
        """The error for a final 401, or None for the API probe `/v2/` (there it is an answer)."""
        if path == "/v2/":
            return None
        what = f"{method} {path}: HTTP 401"
        return refused(self.host, what, self._sender(authorization), self._credentials)

    def _sender(self, authorization: str | None) -> Credential | None:
        """The credential behind an `Authorization` value this authenticator set."""
        scheme, _, value = (authorization or "").partition(" ")
        if scheme.lower() == "basic":
            return self._basic_sent
        if scheme.lower() == "bearer":
            for token in self._tokens.values():
                if hmac.compare_digest(token.value.reveal().encode(), value.encode()):
                    return token.credential
        return None

    def _token_error(self, status: int, found: Credential | None) -> RegistryError:
        if found is None:
            where = self._credentials.describe() if self._credentials else "no sources"
            return CredentialError(
                f"{self.host} requires credentials and none were found (looked in: {where})",
                registry=self.host,
                status=status,
            )
        return CredentialError(
            f"the token service of {self.host} refused the credentials from {found.source} "
            f"(HTTP {status})",
            registry=self.host,
            status=status,
            retryable=status >= 500,
        )


class TokenClient:
    """The HTTP session for a registry's token realm (often another host), built on first use.

    It shares the registry's TLS context, so a private CA trusted for the registry is trusted
    for its token service too, and follows redirects as token services may use them.
    """

    def __init__(
        self,
        ssl_context: ssl.SSLContext | bool,
        timeout: float,
        user_agent: str | None,
        retry: Middleware | None = None,
    ) -> None:
        self._ssl = ssl_context
        self._timeout = timeout
        self._user_agent = user_agent
        self._middlewares = (retry,) if retry is not None else ()
        self._session: aiohttp.ClientSession | None = None

    async def send(
        self,
        method: str,
        url: str,
        *,
        params: Sequence[tuple[str, str]] = (),
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, bytes]:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl, limit=4),
                # Per attempt: the retry middleware decides how long to keep trying.
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=min(self._timeout, 15.0), sock_read=self._timeout
                ),
                headers={"User-Agent": self._user_agent} if self._user_agent else None,
                middlewares=self._middlewares,
            )
        async with self._session.request(
            method, url, params=list(params), data=data, headers=headers
        ) as response:
            return response.status, await response.read()

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


class AuthMiddleware:
    """Authorises requests to the registry endpoint; strips credentials from any other host."""

    def __init__(self, auth: Authenticator, inner: Sequence[Middleware]) -> None:
        self._auth = auth
        self._inner = tuple(inner)  # the layers below, for the scheme probe of `_discover`

    async def __call__(self, request: ClientRequest, handler: Handler) -> ClientResponse:
        if request.url.raw_authority != self._auth.endpoint:
            request.headers.popall("Authorization", None)  # never send credentials elsewhere
            return await handler(request)
        replayable = bytes_body(request)
        if not replayable and self._auth.challenge is None:
            await self._discover(request)
        await self._auth.authorize(request)
        response = await handler(request)
        if response.status != 401:
            return response
        if not await self._auth.unauthorized(request, response):
            return await self._refused(request, response)
        await drain(response)
        if not replayable:
            raise RegistryError(
                f"{request.method} {request.url.path}: a streamed body was refused (HTTP 401) "
                "and cannot be replayed; credentials are renewed, restart the upload",
                registry=self._auth.host,
                status=401,
                retryable=True,
            )
        request.headers.popall("Authorization", None)
        await self._auth.authorize(request)
        response = await handler(request)
        return await self._refused(request, response) if response.status == 401 else response

    async def _refused(self, request: ClientRequest, response: ClientResponse) -> ClientResponse:
        """A final 401: raised as an error naming the credentials, except for the `/v2/` probe."""
        error = self._auth.refusal(
            request.method, request.url.path, request.headers.get("authorization")
        )
        if error is None:
            return response
        await drain(response)
        raise error

    async def _discover(self, request: ClientRequest) -> None:
        """Learn the scheme from `/v2/` before a body that can be sent only once."""
        probe = request.url.with_path("/v2/").with_query(None)
        async with request.session.get(
            probe, middlewares=self._inner, proxy=request.proxy, allow_redirects=False
        ) as response:
            await response.read()
            if response.status == 401:
                self._auth.challenge = parse_challenge(response.headers.get("www-authenticate"))


def create_authenticator(
    host: str,
    endpoint: str,
    credentials: CredentialStore | None,
    *,
    verify: ssl.SSLContext | bool = True,
    timeout: float = 30.0,
    user_agent: str | None = None,
    retry: Middleware | None = None,
) -> Authenticator:
    """An Authenticator with its own client for the token realm (often another host).

    Pass the registry's TLS context as `verify` (`HostSettings.ssl_context()`), so a private
    CA trusted for the registry is trusted for its token service too, and a retry middleware,
    so a token service that stumbles is given the same patience as the registry.
    """
    client = TokenClient(verify, timeout, user_agent, retry)
    return Authenticator(host, endpoint, credentials, client)


__all__ = [
    "AuthMiddleware",
    "Authenticator",
    "Challenge",
    "CredentialError",
    "Token",
    "TokenClient",
    "create_authenticator",
    "parse_challenge",
    "request_scopes",
]
