"""The stack of httpx transports below a registry client.

Behaviour that applies to every request (counting, rate limits, retries, auth) is
a transport layer wrapping the next one, as in go-containerregistry, so the Distribution-API code
in `http.py` never changes when a layer is added. `TransportWrapper`s are applied innermost
first on top of the pooled connection transport.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import httpx

from cip.transport.counting import RequestCounter
from cip.transport.settings import HostSettings

TransportWrapper = Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport]


class CountingTransport(httpx.AsyncBaseTransport):
    """Counts every attempt by host, method and status (0 when no response arrived)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, counter: RequestCounter) -> None:
        self._inner = inner
        self._counter = counter

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.netloc.decode("ascii")
        try:
            response = await self._inner.handle_async_request(request)
        except BaseException:
            self._counter.add(host, request.method, 0)
            raise
        self._counter.add(host, request.method, response.status_code)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def connection_transport(
    settings: HostSettings, scheme: str, max_connections: int
) -> httpx.AsyncHTTPTransport:
    """The pooled keep-alive transport for one scheme; HTTP/2 is negotiated by ALPN on TLS."""
    return httpx.AsyncHTTPTransport(
        verify=settings.ssl_context() if scheme == "https" else False,
        http2=settings.http2 and scheme == "https",
        limits=httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=30.0,
        ),
        proxy=settings.proxies.get(scheme),
        retries=0,
    )


def build_transport(
    settings: HostSettings,
    scheme: str,
    counter: RequestCounter,
    *,
    max_connections: int,
    wrappers: Sequence[TransportWrapper] = (),
) -> httpx.AsyncBaseTransport:
    transport: httpx.AsyncBaseTransport = connection_transport(settings, scheme, max_connections)
    transport = CountingTransport(transport, counter)
    for wrap in wrappers:
        transport = wrap(transport)
    return transport
