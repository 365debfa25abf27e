"""Real Distribution registries on loopback, for tests and benchmarks.

Not a pytest module: `bench/` imports it too. Each `LabRegistry` is a `docker-registry serve`
process we started ourselves (Debian package docker-registry 2.8.2), on an ephemeral port, with
its storage in a temporary folder and its access log captured to a file, so a test can count
the requests a run made (the user-visible cost) rather than guess it. Stopped with SIGTERM to
that PID and waited for; nothing is ever killed by name.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REGISTRY_BINARY = "/usr/bin/docker-registry"
_ACCESS_LINE = re.compile(
    r'"(?P<method>[A-Z]+) (?P<path>\S+) (?P<protocol>HTTP/[0-9.]+)" (?P<status>\d{3}) '
)
_SENTINEL = "/v2/?lab-sentinel="
_NO_VERIFY = ssl._create_unverified_context()  # the lab's own readiness polls only


class LabUnavailable(RuntimeError):
    """The registry binary is missing; fixtures turn this into a failure on CI."""


def registry_binary() -> str | None:
    found = shutil.which("docker-registry")
    if found:
        return found
    return REGISTRY_BINARY if os.access(REGISTRY_BINARY, os.X_OK) else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class AccessEntry:
    method: str
    path: str
    status: int
    protocol: str = "HTTP/1.1"


@dataclass
class LabRegistry:
    """A running registry. `host` is what cip calls it: `127.0.0.1:PORT`."""

    host: str
    root: Path
    access_log: Path
    error_log: Path
    process: subprocess.Popen[bytes]
    _sentinels: int = 0

    tls: bool = False

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    def entries(self) -> list[AccessEntry]:
        """Every request logged so far, lab sentinels excluded."""
        out = []
        for line in self.access_log.read_text(errors="replace").splitlines():
            match = _ACCESS_LINE.search(line)
            if match and not match["path"].startswith(_SENTINEL):
                out.append(
                    AccessEntry(
                        match["method"], match["path"], int(match["status"]), match["protocol"]
                    )
                )
        return out

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until every request answered so far is in the log.

        The registry writes a log line after answering, so a client can see a response before its
        line exists. A sentinel request sent now is logged after all earlier ones finished.
        """
        self._sentinels += 1
        marker = f"{_SENTINEL}{self._sentinels}"
        try:
            with urllib.request.urlopen(f"{self.url}{marker}", timeout=timeout, context=_NO_VERIFY):
                pass
        except urllib.error.HTTPError:
            pass  # registries with auth answer 401; the request is logged all the same
        deadline = time.monotonic() + timeout
        while marker + " " not in self.access_log.read_text(errors="replace"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"registry {self.host} did not log {marker}")
            time.sleep(0.005)

    def mark(self) -> int:
        """The number of requests logged so far; pass it to `requests_since`."""
        self.settle()
        return len(self.entries())

    def requests_since(self, mark: int) -> list[AccessEntry]:
        self.settle()
        return self.entries()[mark:]

    def count_since(self, mark: int) -> Counter[str]:
        """Requests per method since `mark`."""
        return Counter(e.method for e in self.requests_since(mark))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _config(root: Path, port: int, extra: Mapping[str, Any] | None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": False}},
        "storage": {
            "filesystem": {"rootdirectory": str(root / "storage")},
            "delete": {"enabled": True},
            "cache": {"blobdescriptor": "inmemory"},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {"addr": f"127.0.0.1:{port}", "secret": "lab-secret", "draintimeout": "2s"},
    }
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


def start_registry(
    root: Path | None = None,
    *,
    config: Mapping[str, Any] | None = None,
    ready_timeout: float = 15,
    port: int | None = None,
) -> LabRegistry:
    """Start a registry storing below `root` (a fresh temp dir when None) and wait until ready.

    `port` restarts a registry where it was (same root, same port: same name for clients).
    """
    binary = registry_binary()
    if binary is None:
        raise LabUnavailable(
            "docker-registry is not installed (apt-get install docker-registry); "
            "scripts/test installs it"
        )
    root = Path(tempfile.mkdtemp(prefix="cip-lab-")) if root is None else root
    root.mkdir(parents=True, exist_ok=True)
    for attempt in range(5):
        chosen = port or free_port()
        config_path = root / "config.yml"
        config_path.write_text(yaml.safe_dump(_config(root, chosen, config)))
        access_log, error_log = root / "access.log", root / "error.log"
        with access_log.open("wb") as out, error_log.open("wb") as err:
            process = subprocess.Popen(
                [binary, "serve", str(config_path)], stdout=out, stderr=err, cwd=root
            )
        lab = LabRegistry(f"127.0.0.1:{chosen}", root, access_log, error_log, process)
        lab.tls = "tls" in (config or {}).get("http", {})
        if _wait_ready(lab, ready_timeout):
            return lab
        lab.stop()
        if attempt == 4 or "address already in use" not in error_log.read_text(errors="replace"):
            raise RuntimeError(f"registry did not start: {error_log.read_text()[-2000:]}")
    raise AssertionError("unreachable")


def _wait_ready(lab: LabRegistry, timeout: float) -> bool:
    """Poll /v2/ until any HTTP answer (401 counts); False if the process exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lab.process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{lab.url}/v2/", timeout=1, context=_NO_VERIFY):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            time.sleep(0.01)
    return False


@contextmanager
def running_registry(
    root: Path | None = None, *, config: Mapping[str, Any] | None = None
) -> Iterator[LabRegistry]:
    lab = start_registry(root, config=config)
    try:
        yield lab
    finally:
        lab.stop()
        if root is None:
            shutil.rmtree(lab.root, ignore_errors=True)


def self_signed_tls(folder: Path, host: str = "127.0.0.1") -> dict[str, Any]:
    """A throwaway CA-less certificate for `host` and the `http.tls` config that serves it.

    Returns the registry config fragment; the certificate file (its own CA) is
    `folder / "cert.pem"`. Needs the openssl command.
    """
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", f"/CN={host}", "-addext", f"subjectAltName=IP:{host}",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return {"http": {"tls": {"certificate": str(cert), "key": str(key)}}}
