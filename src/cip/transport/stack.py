"""The middleware stack every registry request passes through.

Behaviour that applies to every request (counting, rate limits, retries, auth) is an aiohttp
client middleware wrapping the next one, as transports wrap each other in go-containerregistry,
so the Distribution-API code in `registry/http.py` never changes when a layer is added. aiohttp
calls the first middleware of a list outermost; `build_middlewares` gives the order.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from cip.transport.counting import RequestCounter

if TYPE_CHECKING:
    from aiohttp import ClientRequest, ClientResponse

    Handler = Callable[[ClientRequest], Awaitable[ClientResponse]]
    Middleware = Callable[[ClientRequest, Handler], Awaitable[ClientResponse]]

log = logging.getLogger("cip.transport")


def authority(request: ClientRequest) -> str:
    """`host[:port]` as written in the URL, the key for credentials, limits and counts."""
    return request.url.raw_authority


class CountingMiddleware:
    """Counts every attempt by host, method and status (0 when no response arrived)."""

    def __init__(self, counter: RequestCounter) -> None:
        self._counter = counter

    async def __call__(self, request: ClientRequest, handler: Handler) -> ClientResponse:
        try:
            response = await handler(request)
        except BaseException:
            self._counter.add(authority(request), request.method, 0)
            raise
        self._counter.add(authority(request), request.method, response.status)
        if log.isEnabledFor(logging.DEBUG):
            # Never headers (credentials) nor the query (upload state, signed storage URLs).
            url = request.url.with_query(None)
            log.debug("HTTP Request: %s %s %s", request.method, url, response.status)
        return response


def build_middlewares(
    counter: RequestCounter,
    *,
    retry: Middleware | None = None,
    rate_limit: Middleware | None = None,
    extra: Sequence[Middleware] = (),
) -> tuple[Middleware, ...]:
    """The layers below auth, outermost first: retries (each attempt passes the limiter again),
    the host's rate limit, custom layers, then counting of every attempt. Auth goes on top (a
    retried request keeps its token) and sends its own probes through these layers."""
    layers = [retry, rate_limit, *extra, CountingMiddleware(counter)]
    return tuple(layer for layer in layers if layer is not None)
