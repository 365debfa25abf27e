"""A fault-injecting HTTP/1.1 proxy in front of a real registry.

Not a mock: every request that is not failed on purpose is relayed byte for byte to a real
`docker-registry`, and its answer relayed back, so the client under test speaks the real
protocol through real sockets. A schedule decides per request whether to reset the connection
(before or after the registry saw the request), answer 500/503, answer 429 with or without
`Retry-After`, or answer slowly. Every request is recorded with its arrival time, so tests can
check what the client really sent (rates, retries) rather than what it believes it sent.

Runs on the test's own event loop: `async with FaultProxy(lab.host, schedule) as proxy:` and
point the client at `proxy.host`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal

FaultKind = Literal["pass", "reset", "reset-after", "status", "slow"]


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind = "pass"
    status: int = 0
    retry_after: str | None = None  # for status answers; None sends no header
    delay: float = 0.0  # "slow": seconds before the request is forwarded


PASS = Fault()
RESET = Fault("reset")  # connection reset before the registry sees the request
RESET_AFTER = Fault("reset-after")  # the registry handled it; the answer is lost


def status(code: int, retry_after: str | None = None) -> Fault:
    return Fault("status", status=code, retry_after=retry_after)


def slow(seconds: float) -> Fault:
    return Fault("slow", delay=seconds)


@dataclass(frozen=True, slots=True)
class ProxyRequest:
    index: int  # 0-based, in arrival order
    method: str
    path: str
    at: float  # time.monotonic() when the request head arrived
    body_size: int = 0  # bytes of request body (chunked framing included) the client sent


@dataclass(frozen=True, slots=True)
class ProxyRecord:
    request: ProxyRequest
    fault: Fault
    status: int  # answered status; 0 when the connection was reset


Schedule = Callable[[ProxyRequest], Fault]


def always_pass(_: ProxyRequest) -> Fault:
    return PASS


@dataclass
class Script:
    """The first matching requests get `faults` in order, then everything passes."""

    faults: Sequence[Fault]
    methods: frozenset[str] | None = None
    path: str | None = None  # regex searched in the path
    _used: int = 0

    def __call__(self, request: ProxyRequest) -> Fault:
        if self.methods is not None and request.method not in self.methods:
            return PASS
        if self.path is not None and not re.search(self.path, request.path):
            return PASS
        if self._used >= len(self.faults):
            return PASS
        self._used += 1
        return self.faults[self._used - 1]


@dataclass
class EveryNth:
    """Every n-th request (1-based: n, 2n, ...) gets `fault`."""

    n: int
    fault: Fault
    _seen: int = 0

    def __call__(self, request: ProxyRequest) -> Fault:
        self._seen += 1
        return self.fault if self._seen % self.n == 0 else PASS


@dataclass
class ServerRateLimit:
    """A registry-side quota: above `rate` requests/second, 429 (GCR/AR throttle this way)."""

    rate: float
    burst: float = 1.0
    retry_after: str | None = None
    _tokens: float = field(default=-1.0)
    _stamp: float = 0.0

    def __call__(self, request: ProxyRequest) -> Fault:
        if self._tokens < 0:
            self._tokens, self._stamp = self.burst, request.at
        self._tokens = min(self.burst, self._tokens + (request.at - self._stamp) * self.rate)
        self._stamp = request.at
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return PASS
        return status(429, self.retry_after)


def first_of(*schedules: Schedule) -> Schedule:
    """The first schedule that injects something wins."""

    def pick(request: ProxyRequest) -> Fault:
        for schedule in schedules:
            fault = schedule(request)
            if fault.kind != "pass":
                return fault
        return PASS

    return pick


@dataclass
class Outage:
    """Every request is answered with `fault` until `seconds` after the first one arrived."""

    seconds: float
    fault: Fault = field(default_factory=lambda: status(503))
    _started: float | None = None

    def __call__(self, request: ProxyRequest) -> Fault:
        if self._started is None:
            self._started = request.at
        return self.fault if request.at - self._started < self.seconds else PASS


_REASONS = {
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
_CODES = {429: "TOOMANYREQUESTS", 503: "UNAVAILABLE"}


class FaultProxy:
    """Listens on 127.0.0.1 (ephemeral port) and relays to `upstream` (`host:port`)."""

    def __init__(self, upstream: str, schedule: Schedule = always_pass) -> None:
        self.upstream = upstream
        self.schedule = schedule
        self.records: list[ProxyRecord] = []
        self.host = ""  # 127.0.0.1:PORT once entered
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.in_flight = 0  # requests arrived and not yet fully answered
        self.peak_in_flight = 0
        self._arrivals = 0

    async def __aenter__(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.host = f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()  # handlers see EOF and finish on their own
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    def statuses(self) -> list[int]:
        return [r.status for r in self.records]

    def bytes_relayed(self, methods: frozenset[str] = frozenset({"PUT", "PATCH", "POST"})) -> int:
        """Request body bytes relayed to the registry for these methods: what a client
        uploaded, attempts that were answered or reset after the registry saw them included."""
        return sum(
            r.request.body_size
            for r in list(self.records)
            if r.request.method in methods and r.fault.kind in ("pass", "slow", "reset-after")
        )

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while True:
                try:
                    first = await reader.readexactly(1)
                    if first == b"\x16":
                        # A TLS ClientHello (clients try HTTPS first): refuse it the way Go's
                        # net/http does on a plain port, so the client falls back at once.
                        writer.write(b"HTTP/1.0 400 Bad Request\r\n\r\n")
                        return
                    head = first + await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                arrived = time.monotonic()
                self.in_flight += 1
                self._arrivals += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
                method, path = head.split(b" ", 2)[:2]
                headers = _headers(head)
                try:
                    body = await _read_body(reader, headers, has_body=True)
                    request = ProxyRequest(
                        self._arrivals - 1, method.decode(), path.decode(), arrived, len(body)
                    )
                    upstream, keep = await self._serve(request, head, body, writer, upstream)
                finally:
                    self.in_flight -= 1
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._handlers.discard(task)
            self._writers.discard(writer)
            if upstream is not None:
                upstream[1].close()
            writer.close()

    async def _serve(
        self,
        request: ProxyRequest,
        head: bytes,
        body: bytes,
        writer: asyncio.StreamWriter,
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None,
    ) -> tuple[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None, bool]:
        """Answer one request; returns the upstream connection and whether to keep going."""
        fault = self.schedule(request)
        if fault.kind == "reset":
            self.records.append(ProxyRecord(request, fault, 0))
            _reset(writer)
            return upstream, False
        if fault.kind == "status":
            self.records.append(ProxyRecord(request, fault, fault.status))
            writer.write(_synthetic(fault, head_only=request.method == "HEAD"))
            await writer.drain()
            return upstream, True
        if fault.kind == "slow":
            await asyncio.sleep(fault.delay)
        if upstream is None:
            host, port = self.upstream.rsplit(":", 1)
            upstream = await asyncio.open_connection(host, int(port))
        up_reader, up_writer = upstream
        up_writer.write(head + body)
        await up_writer.drain()
        response_head = await up_reader.readuntil(b"\r\n\r\n")
        code = int(response_head.split(b" ", 2)[1])
        response_headers = _headers(response_head)
        no_body = request.method == "HEAD" or code in (204, 304) or code < 200
        if fault.kind == "reset-after":
            await _read_body(up_reader, response_headers, has_body=not no_body)
            self.records.append(ProxyRecord(request, fault, 0))
            _reset(writer)
            return upstream, False
        self.records.append(ProxyRecord(request, fault, code))
        writer.write(response_head)
        await _read_body(up_reader, response_headers, has_body=not no_body, relay=writer)
        await writer.drain()
        return upstream, response_headers.get("connection", "").lower() != "close"


def _headers(head: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, sep, value = line.partition(":")
        if sep:
            out[name.strip().lower()] = value.strip()
    return out


async def _read_body(
    reader: asyncio.StreamReader,
    headers: dict[str, str],
    *,
    has_body: bool,
    relay: asyncio.StreamWriter | None = None,
) -> bytes:
    """The raw body (chunked framing kept), relayed piece by piece when `relay` is given."""
    pieces: list[bytes] = []

    def emit(data: bytes) -> None:
        if relay is not None:
            relay.write(data)
        else:
            pieces.append(data)

    if not has_body:
        return b""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            line = await reader.readuntil(b"\r\n")
            emit(line)
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                while True:  # trailers, then the blank line (RFC 9112 §7.1)
                    trailer = await reader.readuntil(b"\r\n")
                    emit(trailer)
                    if trailer == b"\r\n":
                        break
                break
            emit(await reader.readexactly(size + 2))
            if relay is not None:
                await relay.drain()
    elif "content-length" in headers:
        left = int(headers["content-length"])
        while left > 0:
            data = await reader.read(min(left, 1 << 20))
            if not data:
                raise asyncio.IncompleteReadError(b"", left)
            left -= len(data)
            emit(data)
            if relay is not None:
                await relay.drain()
    elif relay is not None:  # a response delimited by closing the connection
        while data := await reader.read(1 << 20):
            emit(data)
    return b"".join(pieces)


def _synthetic(fault: Fault, *, head_only: bool) -> bytes:
    body = json.dumps(
        {"errors": [{"code": _CODES.get(fault.status, "UNKNOWN"), "message": "injected fault"}]}
    ).encode()
    lines = [
        f"HTTP/1.1 {fault.status} {_REASONS.get(fault.status, 'Error')}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    if fault.retry_after is not None:
        lines.append(f"Retry-After: {fault.retry_after}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (b"" if head_only else body)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0), as a crashing load balancer does, not a clean FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@contextlib.contextmanager
def threaded_fault_proxy(upstream: str, schedule: Schedule = always_pass) -> Iterator[FaultProxy]:
    """A FaultProxy on its own event loop in a thread, for clients in another process (the
    CLI). Read `records` only after the block: the proxy's thread appends to them."""
    ready: list[FaultProxy] = []
    started, stop = threading.Event(), threading.Event()

    async def serve() -> None:
        async with FaultProxy(upstream, schedule) as proxy:
            ready.append(proxy)
            started.set()
            while not stop.is_set():
                await asyncio.sleep(0.02)

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError(f"fault proxy for {upstream} did not start")
    try:
        yield ready[0]
    finally:
        stop.set()
        thread.join(10)
