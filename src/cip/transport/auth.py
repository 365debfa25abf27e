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
import re
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx

from cip.errors import RegistryError
from cip.transport.credentials import Credential, CredentialError, CredentialStore, Secret, refused
from cip.transport.stack import TransportWrapper

DEFAULT_TOKEN_SECONDS = 60  # distribution token spec: expires_in defaults to 60 s
_REPO_PATH = re.compile(r"^/v2/(?P<name>.+?)/(?:manifests|blobs|tags|referrers)/")
_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^",\s]*))\s*,?')


@dataclass(frozen=True, slots=True)
class Challenge:
    scheme: str  # "basic" or "bearer", lower case
    params: Mapping[str, str]

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple(self.params.get("scope", "").split())


def parse_challenge(value: str | None) -> Challenge | None:
    """The first Basic or Bearer challenge of a `WWW-Authenticate` value (RFC 9110 §11.6.1)."""
    if not value:
        return None
    scheme, _, rest = value.strip().partition(" ")
    scheme = scheme.lower()
    if scheme not in ("basic", "bearer"):
        return None
    params: dict[str, str] = {}
    for match in _PARAM.finditer(rest):
        quoted = match.group(2)
        params[match.group(1).lower()] = (
            re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else match.group(3)
        )
    return Challenge(scheme, params)


def request_scopes(request: httpx.Request) -> tuple[str, ...]:
    """The token scopes a request needs, from its path and method (distribution token spec)."""
    path = request.url.path
    if path.startswith("/v2/_catalog"):
        return ("registry:catalog:*",)
    match = _REPO_PATH.match(path)
    if match is None:
        return ()
    method = request.method
    # Distribution maps GET/HEAD to pull, DELETE to delete, other writes to pull,push.
    actions = (
        "pull" if method in ("GET", "HEAD") else "delete" if method == "DELETE" else "pull,push"
    )
    scopes = [f"repository:{match['name']}:{actions}"]
    source = request.url.params.get("from")
    if method == "POST" and source and request.url.params.get("mount"):
        scopes.append(f"repository:{source}:pull")  # a cross-repo mount reads the source
    return tuple(scopes)


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
        token_client: httpx.AsyncClient,
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

    async def authorize(self, request: httpx.Request) -> None:
        """Set `Authorization` if the scheme is known (pre-authorisation)."""
        if self.challenge is None:
            return
        if self.challenge.scheme == "basic":
            found = await self._credential(demanded=True)
            header = found.basic_auth() if found else None
            self._basic_sent = found if header else None
        else:
            token = await self.token(request_scopes(request))
            header = f"Bearer {token.value.reveal()}" if token else None
        if header:
            request.headers["Authorization"] = header

    async def unauthorized(self, request: httpx.Request, response: httpx.Response) -> bool:
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
        scopes = tuple(dict.fromkeys(request_scopes(request) + challenge.scopes))
        if had is not None:
            # The token was refused (expired early, or too narrow): anonymous is not enough.
            self._demanded = True
            self._tokens.pop(tuple(sorted(scopes)), None)
            self._tokens.pop(tuple(sorted(request_scopes(request))), None)
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
            raise RegistryError(f"{self.host} sent a Bearer challenge without a realm")
        writes = any(s.endswith(("push", "delete", "*")) for s in scopes)
        found = await self._credential(demanded=writes)
        response = await self._ask(realm, challenge, scopes, found)
        if response.status_code in (401, 403) and not self._demanded and not writes:
            self._demanded = True  # anonymous refused: now on-demand credentials may be used
            more = await self._credential(demanded=True)
            if more is not None and more != found:
                found = more
                response = await self._ask(realm, challenge, scopes, found)
        if response.status_code in (401, 403) and found is not None:
            fresh = await self._refresh_credential()  # a helper's token may have expired
            if fresh is not None and fresh != found:
                found = fresh
                response = await self._ask(realm, challenge, scopes, found)
        if response.status_code != 200:
            raise self._token_error(response.status_code, found)
        try:
            body = response.json()
            value = str(body.get("token") or body["access_token"])
            lifetime = float(body.get("expires_in") or DEFAULT_TOKEN_SECONDS)
        except (ValueError, KeyError, TypeError, AttributeError):
            raise RegistryError(
                f"token service of {self.host} answered without a token", registry=self.host
            ) from None
        # Refresh a little early so a token never expires in flight.
        margin = min(10.0, lifetime / 10)
        return Token(Secret(value), self._clock() + lifetime - margin, found)

    async def _ask(
        self,
        realm: str,
        challenge: Challenge,
        scopes: tuple[str, ...],
        found: Credential | None,
    ) -> httpx.Response:
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
                return await self._token_client.post(realm, data=form)
            pairs: list[tuple[str, str | int | float | bool | None]] = [
                ("scope", s) for s in scopes
            ]
            if service:
                pairs.insert(0, ("service", service))
            params = httpx.QueryParams(pairs)  # one scope parameter per scope
            basic = found.basic_auth() if found else None
            headers = {"Authorization": basic} if basic else {}
            return await self._token_client.get(realm, params=params, headers=headers)
        except httpx.TransportError as exc:
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


def _replayable(request: httpx.Request) -> bool:
    # A 401 is answered before the body is used, so any body given as bytes can go again.
    try:
        request.content  # noqa: B018 - raises RequestNotRead for streamed bodies
    except httpx.RequestNotRead:
        return False
    return True


class AuthTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, auth: Authenticator) -> None:
        self._inner = inner
        self._auth = auth

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.netloc.decode("ascii") != self._auth.endpoint:
            request.headers.pop("Authorization", None)  # never send credentials elsewhere
            return await self._inner.handle_async_request(request)
        replayable = _replayable(request)
        if not replayable and self._auth.challenge is None:
            await self._discover(request)
        await self._auth.authorize(request)
        response = await self._inner.handle_async_request(request)
        if response.status_code != 401:
            return response
        if not await self._auth.unauthorized(request, response):
            return await self._refused(request, response)
        await response.aclose()
        if not replayable:
            raise RegistryError(
                f"{request.method} {request.url.path}: a streamed body was refused (HTTP 401) "
                "and cannot be replayed; credentials are renewed, restart the upload",
                registry=self._auth.host,
                status=401,
                retryable=True,
            )
        request.headers.pop("Authorization", None)
        await self._auth.authorize(request)
        response = await self._inner.handle_async_request(request)
        return await self._refused(request, response) if response.status_code == 401 else response

    async def _refused(self, request: httpx.Request, response: httpx.Response) -> httpx.Response:
        """A final 401: raised as an error naming the credentials, except for the `/v2/` probe."""
        error = self._auth.refusal(
            request.method, request.url.path, request.headers.get("authorization")
        )
        if error is None:
            return response
        await response.aclose()
        raise error

    async def _discover(self, request: httpx.Request) -> None:
        """Learn the scheme from `/v2/` before a body that can be sent only once."""
        probe = httpx.Request("GET", request.url.copy_with(path="/v2/", query=None))
        response = await self._inner.handle_async_request(probe)
        await response.aclose()
        if response.status_code == 401:
            self._auth.challenge = parse_challenge(response.headers.get("www-authenticate"))

    async def aclose(self) -> None:
        await self._inner.aclose()
        await self._auth.aclose()


def auth_wrapper(auth: Authenticator) -> TransportWrapper:
    """A `TransportWrapper` for `build_transport(wrappers=...)`; outermost of the stack."""

    def wrap(inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        return AuthTransport(inner, auth)

    return wrap


def create_authenticator(
    host: str,
    endpoint: str,
    credentials: CredentialStore | None,
    *,
    verify: ssl.SSLContext | bool = True,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout: float = 30.0,
    user_agent: str | None = None,
) -> Authenticator:
    """An Authenticator with its own client for the token realm (often another host).

    Pass the registry's TLS context as `verify` (`HostSettings.ssl_context()`), so a private
    CA trusted for the registry is trusted for its token service too.
    """
    client = httpx.AsyncClient(
        transport=transport,
        verify=verify,
        timeout=timeout,
        trust_env=False,
        follow_redirects=True,
        headers={"User-Agent": user_agent} if user_agent else None,
    )
    return Authenticator(host, endpoint, credentials, client)


__all__ = [
    "AuthTransport",
    "Authenticator",
    "Challenge",
    "CredentialError",
    "Token",
    "auth_wrapper",
    "create_authenticator",
    "parse_challenge",
    "request_scopes",
]
