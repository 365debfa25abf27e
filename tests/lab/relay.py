"""A recording relay: forwards POSTs to a target and keeps each request with the answer it got.

Registry notifications are POSTed by the registry, not by the test, so the test cannot see the
auditor's answers directly; putting this relay between them lets it read every envelope the
registry sent and every answer the auditor gave, unchanged. While the target is down, the relay
answers 502, so the registry queues and retries as it would with the target itself.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.lab.registry_lab import free_port


@dataclass(frozen=True)
class Exchange:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    answer: bytes

    def answer_json(self) -> Any:
        return json.loads(self.answer)


class Relay:
    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()
        relay = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                request = urllib.request.Request(
                    relay.target + self.path, data=body, headers=headers, method="POST"
                )
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        status, answer = response.status, response.read()
                except urllib.error.HTTPError as error:
                    status, answer = error.code, error.read()
                except OSError:
                    self.send_response(502)
                    self.end_headers()
                    return
                with relay._lock:
                    relay.exchanges.append(Exchange(self.path, headers, body, status, answer))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.port = free_port()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answered(self) -> list[Exchange]:
        with self._lock:
            return list(self.exchanges)

    def wait_for(
        self, done: Callable[[list[Exchange]], bool], timeout: float = 60
    ) -> list[Exchange]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.answered()
            if done(found):
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; relayed so far: {[e.body for e in found]}")
            time.sleep(0.05)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
