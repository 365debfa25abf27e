"""Opening a Distribution registry over HTTP: a session from `transport/`, the API client on top."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from cip.registry.http import HttpRegistry
from cip.transport.counting import RequestCounter
from cip.transport.credentials import CredentialStore
from cip.transport.ratelimit import RateLimiter
from cip.transport.retry import RetryPolicy
from cip.transport.session import create_session
from cip.transport.settings import NetworkOptions, host_settings

if TYPE_CHECKING:
    from cip.transport.stack import Middleware


def create_http_registry(
    host: str,
    options: NetworkOptions | None = None,
    *,
    max_connections: int = 64,
    timeout: float = 60.0,
    middlewares: Sequence[Middleware] = (),
    counter: RequestCounter | None = None,
    catalog_page_size: int | None = 1000,
    credentials: CredentialStore | None = None,
    limiter: RateLimiter | None = None,
    retry: RetryPolicy | None = None,
) -> HttpRegistry:
    """A client for `host[:port]`; no I/O happens until the first request. Close with aclose().

    Share one `limiter` across clients of a run (see `transport.session`).
    """
    settings = host_settings(host, options or NetworkOptions())
    counter = counter if counter is not None else RequestCounter()
    session, authenticator = create_session(
        settings,
        counter,
        max_connections=max_connections,
        timeout=timeout,
        middlewares=middlewares,
        credentials=credentials,
        limiter=limiter,
        retry=retry,
    )
    registry = HttpRegistry(settings, session, counter, catalog_page_size=catalog_page_size)
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
