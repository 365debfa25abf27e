"""Google's Pub/Sub emulator (Java), started by PID on a free port, driven over its REST API.

It is the real push machinery: a topic, a push subscription to an HTTP endpoint, messages
published and delivered as Pub/Sub delivers them (the envelope with both spellings of the
message id), redelivered while the endpoint answers an error. It sends no Authorization
header, so pushes through it reach services running with `--pubsub-auth=none`.

The emulator comes with the Google Cloud CLI (`google-cloud-cli-pubsub-emulator`), not with
Debian: a machine without it fails the tests that need it, never skips them.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.lab.registry_lab import free_port

EMULATOR = Path(
    os.environ.get(
        "CIP_PUBSUB_EMULATOR",
        "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator",
    )
)
PROJECT = "lab-project"
# A small heap and the quick compiler: the emulator starts in about two seconds and stays lean.
JAVA_OPTS = "-Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


@dataclass
class PubSubEmulator:
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/projects/{PROJECT}"

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"{}")

    def create_topic(self, topic: str) -> None:
        self._call("PUT", f"/topics/{topic}", {})

    def create_push_subscription(self, name: str, topic: str, endpoint: str) -> None:
        """A push subscription without payload unwrapping, as GCR's auditor uses."""
        self._call(
            "PUT",
            f"/subscriptions/{name}",
            {
                "topic": f"projects/{PROJECT}/topics/{topic}",
                "pushConfig": {"pushEndpoint": endpoint},
                "ackDeadlineSeconds": 10,
                "retryPolicy": {"minimumBackoff": "1s", "maximumBackoff": "2s"},
            },
        )

    def publish(self, topic: str, payload: Mapping[str, Any] | bytes) -> str:
        """Publish one message as GCR does (JSON in `data`); returns its message id."""
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        answer = self._call(
            "POST",
            f"/topics/{topic}:publish",
            {"messages": [{"data": base64.b64encode(raw).decode()}]},
        )
        ids: list[str] = answer["messageIds"]
        return ids[0]


@contextmanager
def pubsub_emulator(folder: Path) -> Iterator[PubSubEmulator]:
    if not EMULATOR.is_file():
        raise AssertionError(
            f"the Pub/Sub emulator is not installed at {EMULATOR} "
            "(Google Cloud CLI component google-cloud-cli-pubsub-emulator, Java 17)"
        )
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / f"pubsub-emulator-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(EMULATOR), "--host=127.0.0.1", f"--port={port}", f"--data-dir={folder}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "JAVA_OPTS": JAVA_OPTS},
        )
    emulator = PubSubEmulator(port)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(f"the Pub/Sub emulator exited: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1):
                    break
            except (OSError, urllib.error.HTTPError):
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"the Pub/Sub emulator did not answer: {log.read_text()[-2000:]}"
                    ) from None
                time.sleep(0.1)
        yield emulator
    finally:
        process.terminate()  # the script execs java: this PID is the emulator itself
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
