"""Building the HTTP client one registry host's requests go through.

Layers, innermost first: request counting, custom wrappers, the host's rate limit (every
attempt waits for its slot), retries (each attempt passes the limiter again), auth (a retried
request keeps its token). The Distribution-API code in `registry/` receives the finished client
and knows nothing of how its requests are carried.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from cip import __version__
from cip.transport.auth import Authenticator, auth_wrapper, create_authenticator
from cip.transport.counting import RequestCounter
from cip.transport.credentials import CredentialStore
from cip.transport.ratelimit import RateLimiter
from cip.transport.retry import RetryPolicy, retry_wrapper
from cip.transport.settings import HostSettings
from cip.transport.stack import TransportWrapper, build_transport

USER_AGENT = f"cip/{__version__}"


def create_session(
    settings: HostSettings,
    counter: RequestCounter,
    *,
    max_connections: int,
    timeout: float,
    wrappers: Sequence[TransportWrapper] = (),
    credentials: CredentialStore | None = None,
    limiter: RateLimiter | None = None,
    retry: RetryPolicy | None = None,
) -> tuple[httpx.AsyncClient, Authenticator]:
    """The client for one host and the authenticator inside it; no I/O happens here.

    Share one `limiter` across the sessions of a run: budgets belong to hosts, not clients.
    """
    authenticator = create_authenticator(
        settings.host,
        settings.endpoint,
        credentials,
        verify=settings.ssl_context(),
        user_agent=USER_AGENT,
    )
    layers: list[TransportWrapper] = [
        *wrappers,
        (limiter or RateLimiter()).wrapper(settings.host, settings.endpoint),
        retry_wrapper(retry or RetryPolicy(), registry=settings.host),
        auth_wrapper(authenticator),
    ]

    def stack(scheme: str) -> httpx.AsyncBaseTransport:
        return build_transport(
            settings, scheme, counter, max_connections=max_connections, wrappers=layers
        )

    client = httpx.AsyncClient(
        transport=stack("https"),
        mounts={"http://": stack("http")},
        timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0), pool=None),
        headers={"User-Agent": USER_AGENT},
        trust_env=False,  # proxies and CA files come from NetworkOptions, read once
    )
    return client, authenticator
