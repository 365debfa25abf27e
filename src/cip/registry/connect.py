"""Building an HTTP registry client: the transport stack a run's requests go through.

Layers, innermost first: request counting, custom wrappers, the host's rate limit (every
attempt waits for its slot), retries (each attempt passes the limiter again), auth (a retried
request keeps its token). Kept apart from `http.py`, which speaks the Distribution API and
knows nothing of how its requests are carried.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx

from cip import __version__
from cip.registry.auth import auth_wrapper, create_authenticator
from cip.registry.client import RequestCounter
from cip.registry.credentials import CredentialStore
from cip.registry.http import HttpRegistry
from cip.registry.names import NetworkOptions, host_settings
from cip.registry.ratelimit import RateLimiter
from cip.registry.retry import RetryPolicy, retry_wrapper
from cip.registry.transport import TransportWrapper, build_transport


def create_http_registry(
    host: str,
    options: NetworkOptions | None = None,
    *,
    max_connections: int = 64,
    timeout: float = 60.0,
    wrappers: Sequence[TransportWrapper] = (),
    counter: RequestCounter | None = None,
    catalog_page_size: int | None = 1000,
    credentials: CredentialStore | None = None,
    limiter: RateLimiter | None = None,
    retry: RetryPolicy | None = None,
) -> HttpRegistry:
    """A client for `host[:port]`; no I/O happens until the first request. Close with aclose().

    Layers, innermost first: request counting, custom `wrappers`, the host's rate limit (every
    attempt waits for its slot), retries (each attempt passes the limiter again), auth (a
    retried request keeps its token). Share one `limiter` across clients of a run.
    """
    settings = host_settings(host, options or NetworkOptions())
    counter = counter if counter is not None else RequestCounter()
    authenticator = create_authenticator(
        settings.host,
        settings.endpoint,
        credentials,
        verify=settings.ssl_context(),
        user_agent=f"cip/{__version__}",
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
        headers={"User-Agent": f"cip/{__version__}"},
        trust_env=False,  # proxies and CA files come from NetworkOptions, read once
    )
    registry = HttpRegistry(settings, client, counter, catalog_page_size=catalog_page_size)
    registry.authenticator = authenticator
    return registry


@asynccontextmanager
async def open_http_registry(
    host: str, options: NetworkOptions | None = None, **kwargs: Any
) -> AsyncIterator[HttpRegistry]:
    registry = create_http_registry(host, options, **kwargs)
    try:
        yield registry
    finally:
        await registry.aclose()
