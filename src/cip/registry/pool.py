"""One client per registry host (or per `oci:` folder) for a whole run.

Manifests name registries as `host[:port]/path`; connections, auth, rate limits and request
counts belong to the host, so every manifest registry on the same host shares one client and
its pooled connections. The pool is the only place clients are created and closed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING

from cip.model.refs import Registry as RegistryName
from cip.registry.client import Registry
from cip.registry.connect import create_http_registry
from cip.registry.layout import open_layout
from cip.transport.counting import RequestCounter
from cip.transport.credentials import CredentialStore
from cip.transport.ratelimit import RateLimiter
from cip.transport.retry import RetryPolicy
from cip.transport.settings import NetworkOptions

if TYPE_CHECKING:
    from cip.transport.stack import Middleware


@dataclass
class RegistryPool:
    options: NetworkOptions = field(default_factory=NetworkOptions)
    # Connections per host: as many as requests a run keeps in flight by default (--concurrency),
    # so a distant registry is not held to pool-size round trips at a time.
    max_connections: int = 32
    timeout: float = 60.0
    middlewares: Sequence[Middleware] = ()
    counter: RequestCounter = field(default_factory=RequestCounter)
    credentials: CredentialStore | None = None
    limiter: RateLimiter = field(default_factory=RateLimiter)  # one per run: shared budgets
    retry: RetryPolicy | None = None
    _clients: dict[str, Registry] = field(default_factory=dict)

    def client(self, registry: RegistryName) -> Registry:
        key = f"oci:{registry.oci_dir}" if registry.oci_dir is not None else registry.host
        found = self._clients.get(key)
        if found is None:
            if registry.oci_dir is not None:
                found = open_layout(registry.oci_dir)
            else:
                found = create_http_registry(
                    registry.host,
                    self.options,
                    max_connections=self.max_connections,
                    timeout=self.timeout,
                    middlewares=self.middlewares,
                    counter=self.counter,
                    credentials=self.credentials,
                    limiter=self.limiter,
                    retry=self.retry,
                )
            self._clients[key] = found
        return found

    def locate(self, registry: RegistryName, image: str) -> tuple[Registry, str]:
        """The client and the repository path of `image` in a manifest's registry."""
        return self.client(registry), registry.repository(image)

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

    async def __aenter__(self) -> RegistryPool:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
