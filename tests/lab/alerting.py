"""Prometheus and Alertmanager from Debian, started by PID with temporary configurations, and
a webhook that records what Alertmanager sends.

Both listen on 127.0.0.1 only (Alertmanager's cluster port is turned off); each runs in its own
folder and is stopped with SIGTERM to its PID.
"""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.lab.registry_lab import free_port


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise AssertionError(
            f"{name} is not installed (Debian packages prometheus and prometheus-alertmanager; "
            "scripts/test installs them)"
        )
    return found


@dataclass
class Webhook:
    """Alertmanager's webhook receiver: every POST's JSON body, by path."""

    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def alerts(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [a for p, body in self.received if p == path for a in body["alerts"]]


@contextmanager
def webhook() -> Iterator[tuple[Webhook, str]]:
    """The receiver on 127.0.0.1; yields it and its base URL."""
    hook = Webhook()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with hook.lock:
                hook.received.append((self.path, body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@contextmanager
def _process(args: list[str], folder: Path, name: str, port: int) -> Iterator[str]:
    """Start `args`, wait for /-/ready on `port`, yield the base URL, stop it by PID."""
    log = folder / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=folder)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(
                    f"{name} exited {process.returncode}: {log.read_text()[-3000:]}"
                )
            try:
                with urllib.request.urlopen(url + "/-/ready", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} was not ready: {log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def alertmanager(config: dict[str, Any], folder: Path) -> Iterator[str]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "alertmanager.yaml").write_text(yaml.safe_dump(config))
    port = free_port()
    args = [
        _binary("prometheus-alertmanager"),
        f"--config.file={folder / 'alertmanager.yaml'}",
        f"--storage.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # no gossip port: a single instance
    ]
    with _process(args, folder, "alertmanager", port) as url:
        yield url


@contextmanager
def prometheus(
    config: dict[str, Any], folder: Path, files: dict[str, Path] | None = None
) -> Iterator[str]:
    """Prometheus with `config`; `files` are copied beside it (rule files it names)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in (files or {}).items():
        shutil.copy(source, folder / name)
    (folder / "prometheus.yaml").write_text(yaml.safe_dump(config))
    port = free_port()
    args = [
        _binary("prometheus"),
        f"--config.file={folder / 'prometheus.yaml'}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with _process(args, folder, "prometheus", port) as url:
        yield url


def query(prometheus_url: str, expression: str) -> list[dict[str, Any]]:
    """An instant query's result vector."""
    address = f"{prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
    with urllib.request.urlopen(address, timeout=10) as response:
        answer = json.loads(response.read())
    assert answer["status"] == "success", answer
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
