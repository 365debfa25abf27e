"""HTTPS_PROXY / HTTP_PROXY through a real forward proxy in front of a real registry.

Loopback registries never go through a proxy, so the registry is named `registry.test:PORT`, a
name only the proxy can resolve (it maps it to the lab registry): anything that reached the
registry went through the proxy. The name is an `--insecure-registry`, so cip first tries HTTPS
(a CONNECT tunnel), finds no TLS there, and speaks plain HTTP in absolute form, as clients do to
an HTTP proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

from cip.registry.connect import open_http_registry
from cip.transport.settings import NetworkOptions
from tests.lab import images
from tests.lab.registry_lab import LabRegistry


class ForwardProxy:
    """CONNECT tunnels and absolute-form requests, for the names in `routes` only."""

    def __init__(self, routes: dict[str, str]) -> None:
        self.routes = routes  # "name:port" -> "127.0.0.1:port"
        self.seen: list[str] = []  # first request line of every client connection
        self.url = ""
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> ForwardProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
            self.seen.append(f"{method} {target}")
            authority = target if method == "CONNECT" else target.split("/", 3)[2]
            upstream = self.routes.get(authority)
            if upstream is None:
                writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return
            host, _, port = upstream.rpartition(":")
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
            if method == "CONNECT":
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                up_writer.write(head)  # Go's server takes absolute-form request lines as they are
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError):
        writer.write_eof()


def test_requests_go_through_the_configured_proxy(lab_registry: LabRegistry) -> None:
    port = lab_registry.host.rpartition(":")[2]
    name = f"registry.test:{port}"
    image = images.oci_index(90)

    async def body() -> ForwardProxy:
        async with ForwardProxy({name: lab_registry.host}) as proxy:
            options = NetworkOptions.from_environment(
                {"HTTPS_PROXY": proxy.url, "HTTP_PROXY": proxy.url, "NO_PROXY": "example.com"},
                insecure_registries=frozenset({name}),
            )
            async with open_http_registry(name, options) as reg:
                await images.push(reg, "lab/p", image, "v1")
                assert (await reg.get_manifest("lab/p", "v1")).data == image.manifest
                assert await reg.base_url() == f"http://{name}"
            return proxy

    proxy = asyncio.run(body())
    assert f"CONNECT {name}" in proxy.seen  # HTTPS tried first, through the tunnel
    # Then plain HTTP in absolute form (the registry's name travels to the proxy, not resolved).
    assert any(f" http://{name}/v2/" in line for line in proxy.seen)
