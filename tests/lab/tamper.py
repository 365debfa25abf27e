"""A small real HTTP proxy in front of a lab registry that can rewrite what it answers.

A Distribution registry never serves bytes that do not match their digest, so to see cip refuse
such bytes something between them has to change the answer: this proxy forwards GET and HEAD to
the registry and passes each response through a rewrite function. It speaks real HTTP over a
socket; the registry behind it is real; only the bytes in flight are altered.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    request_path: str = ""
    request_method: str = ""
    extra: dict[str, str] = field(default_factory=dict)


Rewrite = Callable[[Answer], Answer]

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


def _handler(upstream: str, rewrite: Rewrite) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _forward(self) -> None:
            connection = http.client.HTTPConnection(upstream, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            connection.request(self.command, self.path, headers=headers)
            response = connection.getresponse()
            body = response.read()
            answer = Answer(
                response.status,
                {k: v for k, v in response.getheaders() if k.lower() not in _HOP},
                body,
                request_path=self.path,
                request_method=self.command,
            )
            length = response.getheader("content-length")
            connection.close()
            answer = rewrite(answer)
            self.send_response(answer.status)
            for key, value in answer.headers.items():
                self.send_header(key, value)
            if self.command == "HEAD":
                self.send_header("Content-Length", length or "0")
                self.end_headers()
                return
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        do_GET = _forward
        do_HEAD = _forward

    return Handler


@contextmanager
def tampering_proxy(upstream: str, rewrite: Rewrite) -> Iterator[str]:
    """Serve on an ephemeral loopback port; yields the proxy's `host:port`."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(upstream, rewrite))
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def flip_last_byte(body: bytes) -> bytes:
    """Same length, different bytes: only a digest check notices."""
    return body[:-1] + bytes([body[-1] ^ 0x01]) if body else body
