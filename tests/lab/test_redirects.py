"""Blob GETs that a registry redirects to object storage (S3, GCS), through a redirecting proxy.

The registry is real and wants Basic credentials; a proxy in front of it answers every blob GET
the registry granted with a 307 to a storage server on another port, which serves the same
bytes and records what it was sent. Credentials belong to the registry: storage must never see
them, and every byte fetched from it must still match its digest.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.server
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cip.errors import DigestMismatchError
from cip.transport.credentials import CredentialStore, EnvCredentials, env_variable
from tests.lab import images
from tests.lab.auth_lab import basic_auth_config, htpasswd, serve
from tests.lab.registry_lab import LabRegistry
from tests.lab.stack import authenticated_registry
from tests.lab.tamper import Answer, flip_last_byte, tampering_proxy

PASSWORD = "redirect-Secret-5d2"


def env_store(host: str) -> CredentialStore:
    return CredentialStore([EnvCredentials({env_variable(host): f"alice:{PASSWORD}"})])


class Storage:
    """Serves redirected blobs; remembers the headers of every request it got."""

    def __init__(self) -> None:
        self.port = 0
        self.blobs: dict[str, bytes] = {}
        self.seen: list[dict[str, str]] = []
        self._lock = threading.Lock()

    def handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        storage = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with storage._lock:
                    storage.seen.append({k.lower(): v for k, v in self.headers.items()})
                data = storage.blobs.get(self.path.partition("?")[0], b"")
                self.send_response(200 if data else 404)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def redirect_blobs(
        self, tamper: Callable[[bytes], bytes] = bytes
    ) -> Callable[[Answer], Answer]:
        """A proxy rewrite: a granted blob GET becomes a 307 to a signed-looking storage URL."""

        def rewrite(answer: Answer) -> Answer:
            if "/blobs/" not in answer.request_path or answer.request_method != "GET":
                return answer
            if answer.status != 200:
                return answer  # a 401 goes back to the client as the registry sent it
            path = "/storage/" + answer.request_path.rsplit("/", 1)[1]
            with self._lock:
                self.blobs[path] = tamper(answer.body)
            location = f"http://127.0.0.1:{self.port}{path}?X-Signature=abc123"
            return Answer(307, {"Location": location}, b"")

        return rewrite


@pytest.fixture
def basic_registry(registry_factory: Callable[..., LabRegistry], tmp_path: Path) -> LabRegistry:
    return registry_factory(basic_auth_config(htpasswd(tmp_path / "htpasswd", {"alice": PASSWORD})))


def _push(lab: LabRegistry, image: images.Image) -> None:
    async def body() -> None:
        reg, _ = authenticated_registry(lab.host, env_store(lab.host))
        try:
            await images.push(reg, "lab/app", image, "v1")
        finally:
            await reg.aclose()

    asyncio.run(body())


def test_redirected_blob_gets_no_credentials_and_is_verified(basic_registry: LabRegistry) -> None:
    image = images.docker_image(61, layer_size=300_000)
    _push(basic_registry, image)
    storage = Storage()

    async def fetch(host: str) -> None:
        reg, _ = authenticated_registry(host, env_store(host))
        try:
            for blob in image.blobs:
                hasher = hashlib.sha256()
                async for chunk in reg.stream_blob("lab/app", blob.digest):
                    hasher.update(chunk)
                assert f"sha256:{hasher.hexdigest()}" == blob.digest
        finally:
            await reg.aclose()

    with (
        serve(storage.handler()) as port,
        tampering_proxy(basic_registry.host, storage.redirect_blobs()) as proxy,
    ):
        storage.port = port
        asyncio.run(fetch(proxy))
    assert len(storage.seen) == len(image.blobs)  # every blob came from storage
    assert all("authorization" not in headers for headers in storage.seen)
    # The registry itself was asked with credentials (it answered 200, not 401).
    assert storage.blobs and all(storage.blobs.values())


def test_redirected_blob_bytes_that_do_not_match_are_refused(basic_registry: LabRegistry) -> None:
    image = images.docker_image(62, layer_size=200_000)
    _push(basic_registry, image)
    storage = Storage()
    layer = image.blobs[-1]

    async def fetch(host: str) -> DigestMismatchError:
        reg, _ = authenticated_registry(host, env_store(host))
        try:
            with pytest.raises(DigestMismatchError) as raised:
                async for _ in reg.stream_blob("lab/app", layer.digest):
                    pass
            return raised.value
        finally:
            await reg.aclose()

    with (
        serve(storage.handler()) as port,
        tampering_proxy(basic_registry.host, storage.redirect_blobs(flip_last_byte)) as proxy,
    ):
        storage.port = port
        error = asyncio.run(fetch(proxy))
    assert layer.digest in error.render()
    assert all("authorization" not in headers for headers in storage.seen)
