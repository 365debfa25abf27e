"""A local sigstore instance (Fulcio, CT log, Rekor v1) for keyless tests, and OIDC tokens for it.

`tests/sigstore_lab/server.js` serves @sigstore/mock's handlers on 127.0.0.1 (a free port it
picks) and writes the trust config cip and sigstore-python sign with. Each start makes new keys:
two instances never trust each other, which is how a test gets "another Fulcio". Started by
PID and stopped by that PID. Node and the npm packages are installed by scripts/test.

Tokens are unsigned-in-effect HS256 JWTs: Fulcio's mock reads the claims without verifying the
signature, as sigstore clients never verify them either.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from tests.lab.registry_lab import LabUnavailable

LAB_FOLDER = Path(__file__).resolve().parents[1] / "sigstore_lab"
IDENTITY = "https://cip.test/promoter@refs/heads/main"
ISSUER = "https://oidc.cip.test"


def make_token(
    subject: str = IDENTITY, issuer: str = ISSUER, *, lifetime: int = 600, **claims: Any
) -> str:
    now = int(time.time())
    body = {"iss": issuer, "sub": subject, "aud": "sigstore", "iat": now - 5, "exp": now + lifetime}
    body.update(claims)
    return jwt.encode(body, "cip-test-oidc-signing-secret-of-32-bytes", algorithm="HS256")


@dataclass
class SigstoreLab:
    folder: Path
    url: str
    process: subprocess.Popen[bytes]

    @property
    def trust_config(self) -> Path:
        return self.folder / "trust_config.json"

    @property
    def trusted_root(self) -> Path:
        return self.folder / "trusted_root.json"

    def stats(self) -> dict[str, Any]:
        """Certificates and Rekor entries issued so far, and the token subjects Fulcio saw."""
        with urllib.request.urlopen(f"{self.url}/stats", timeout=10) as response:
            found: dict[str, Any] = json.load(response)
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def node_binary() -> str | None:
    return shutil.which("node")


def start_sigstore_lab(folder: Path) -> SigstoreLab:
    node = node_binary()
    if node is None:
        raise LabUnavailable("node is not installed: the keyless lab needs it")
    if not (LAB_FOLDER / "node_modules" / "@sigstore" / "mock").is_dir():
        raise LabUnavailable(f"npm packages missing: run npm ci --prefix {LAB_FOLDER}")
    folder.mkdir(parents=True, exist_ok=True)
    log = open(folder / "server.log", "wb")  # noqa: SIM115  (kept open for the process)
    process = subprocess.Popen(
        [node, str(LAB_FOLDER / "server.js"), str(folder)],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=LAB_FOLDER,
        env={**os.environ, "NODE_NO_WARNINGS": "1"},
    )
    log.close()
    ready = folder / "ready.json"
    deadline = time.monotonic() + 30
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait()
            output = (folder / "server.log").read_text(errors="replace")
            raise RuntimeError(f"the sigstore lab did not start:\n{output}")
        time.sleep(0.05)
    url = json.loads(ready.read_text())["url"]
    return SigstoreLab(folder, url, process)
