"""`cip audit serve` as a real subprocess on a free port, and the ways a test talks to it.

Started as a user starts it (`python -m cip.cli audit serve …`), ready once /healthz answers,
stopped with SIGTERM to its PID; `stop()` returns the exit code so tests can check the drain.
"""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.cli import REPO
from tests.lab.registry_lab import free_port

TOKEN = "lab-distribution-token"


@dataclass
class RunningAuditor:
    process: subprocess.Popen[bytes]
    port: int
    stdout: Path
    stderr: Path
    last_headers: Message | None = None  # of the last answer to post(), any case

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def post(
        self, path: str, body: bytes, headers: Mapping[str, str] | None = None
    ) -> tuple[int, Any]:
        """POST and return (status, the JSON answer)."""
        request = urllib.request.Request(
            self.url + path,
            data=body,
            headers={"Content-Type": "application/json", **(headers or {})},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                self.last_headers = response.headers
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            self.last_headers = error.headers
            return error.code, json.loads(error.read())

    def get(self, path: str) -> tuple[int, Any]:
        """GET and return (status, the JSON answer)."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def pubsub(
        self,
        payload: Mapping[str, Any] | bytes,
        message_id: str,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        """A Pub/Sub push as the push subscription sends it (both spellings of the id)."""
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        envelope = {
            "message": {
                "data": base64.b64encode(raw).decode(),
                "attributes": {},
                "messageId": message_id,
                "message_id": message_id,
                "publishTime": "2026-11-02T10:00:00.000Z",
                "publish_time": "2026-11-02T10:00:00.000Z",
            },
            "subscription": "projects/lab/subscriptions/cip-audit",
        }
        return self.post("/pubsub", json.dumps(envelope).encode(), headers)

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of /metrics, by name and sorted labels."""
        with urllib.request.urlopen(self.url + "/metrics", timeout=30) as response:
            assert response.status == 200
            text = response.read().decode()
        samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples

    def events_total(self, source: str, action: str, verdict: str) -> float:
        labels = (("action", action), ("source", source), ("verdict", verdict))
        return self.metrics()[("cip_audit_events_total", labels)]

    def decision_lines(self) -> list[dict[str, Any]]:
        """The JSON lines the service wrote on stdout, one per decision."""
        return [json.loads(line) for line in self.stdout.read_text().splitlines() if line]

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError("the auditor did not stop within 30 s of SIGTERM") from None
        return self.process.returncode


def start_auditor(
    args: list[str], folder: Path, *, port: int | None = None, env: Mapping[str, str] | None = None
) -> RunningAuditor:
    port = port or free_port()
    folder.mkdir(parents=True, exist_ok=True)
    stdout, stderr = folder / f"auditor-{port}.out", folder / f"auditor-{port}.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "cip.cli", "audit", "serve", "--port", str(port), *args],
            stdout=out,
            stderr=err,
            cwd=REPO,
            env=dict(env) if env is not None else None,
        )
    auditor = RunningAuditor(process, port, stdout, stderr)
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise AssertionError(f"the auditor exited {process.returncode}: {stderr.read_text()}")
        try:
            with urllib.request.urlopen(auditor.url + "/healthz", timeout=1) as response:
                if response.status == 200:
                    return auditor
        except OSError:
            pass
        if time.monotonic() > deadline:
            auditor.stop()
            raise AssertionError(f"the auditor did not answer /healthz: {stderr.read_text()}")
        time.sleep(0.05)


@contextmanager
def running_auditor(args: list[str], folder: Path, **kwargs: Any) -> Iterator[RunningAuditor]:
    auditor = start_auditor(args, folder, **kwargs)
    try:
        yield auditor
    finally:
        auditor.stop()


def notifications(url: str, token: str = TOKEN) -> dict[str, Any]:
    """The registry config that POSTs every event to `url` with a bearer token (LAB.md)."""
    return {
        "notifications": {
            "events": {"includereferences": True},
            "endpoints": [
                {
                    "name": "cip-audit",
                    "url": url,
                    "headers": {"Authorization": [f"Bearer {token}"]},
                    "timeout": "5s",
                    "threshold": 5,
                    "backoff": "200ms",
                }
            ],
        }
    }
