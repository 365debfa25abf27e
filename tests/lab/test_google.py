"""Google's registries, which cannot be reached offline.

These tests run against a RECORDED-RESPONSE TEST SERVER, not gcr.io: a local server that
answers with the headers and JSON bodies gcr.io sends (the `Bearer realm=.../v2/token,
service=gcr.io` challenge, the token endpoint that takes `oauth2accesstoken` + an access token
as Basic credentials, and tags/list with Google's `manifest` map). The service account's access
token comes from a stand-in token source, because google-auth would need Google's servers.
"""

from __future__ import annotations

import asyncio
import base64
import http.server
import json
import sys
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from cip.transport.credentials import CredentialError, CredentialStore
from cip.transport.google import ACCESS_TOKEN_USER, GoogleServiceAccount, google_auth_token
from tests.lab.auth_lab import serve
from tests.lab.stack import authenticated_registry

ACCESS_TOKEN = "ya29.recorded-access-token-Secret"
DIGEST = "sha256:" + "7" * 64
CHILD = "sha256:" + "8" * 64
# tags/list as gcr.io answers it: `tags` plus a `manifest` map of digest -> tags, media type.
TAGS_LIST = {
    "child": [],
    "manifest": {
        DIGEST: {
            "imageSizeBytes": "299513",
            "layerId": "",
            "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
            "tag": ["3.9", "latest"],
            "timeCreatedMs": "1667928212000",
            "timeUploadedMs": "1667928346417",
        },
        CHILD: {
            "imageSizeBytes": "299513",
            "layerId": "",
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "tag": [],
            "timeCreatedMs": "1667928212000",
            "timeUploadedMs": "1667928346417",
        },
    },
    "name": "k8s-artifacts-prod/pause",
    "tags": ["3.9", "latest"],
}


class Recorded:
    """Replays gcr.io's answers; `private` repositories need the service account's token."""

    def __init__(self) -> None:
        self.port = 0
        self.log: list[tuple[str, str]] = []  # (path, who): who is anonymous / account

    def handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        recorded = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                auth = self.headers.get("Authorization", "")
                if url.path == "/v2/token":
                    self._token(urllib.parse.parse_qs(url.query), auth)
                elif not auth.startswith("Bearer granted-"):
                    recorded.log.append((url.path, "no token"))
                    realm = f"http://127.0.0.1:{recorded.port}/v2/token"
                    self._json(
                        401,
                        {"errors": [{"code": "UNAUTHORIZED", "message": "Unauthorized"}]},
                        {"WWW-Authenticate": f'Bearer realm="{realm}",service="gcr.io"'},
                    )
                elif url.path.endswith("/tags/list"):
                    recorded.log.append((url.path, auth.split("-", 2)[1]))
                    self._json(200, TAGS_LIST)
                else:
                    self._json(200, {})

            def _token(self, query: dict[str, list[str]], auth: str) -> None:
                scopes = query.get("scope", [])
                who = "anonymous"
                if auth.startswith("Basic "):
                    user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                    if (user, password) != (ACCESS_TOKEN_USER, ACCESS_TOKEN):
                        self._json(401, {"errors": [{"code": "UNAUTHORIZED"}]})
                        return
                    who = "account"
                if who == "anonymous" and any("private" in s for s in scopes):
                    # gcr.io refuses anonymous tokens for private repositories.
                    self._json(403, {"errors": [{"code": "DENIED"}]})
                    return
                recorded.log.append(("/v2/token", who))
                self._json(200, {"expires_in": 43200, "token": f"granted-{who}-token"})

            def _json(self, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    server = Recorded()
    with serve(server.handler()) as port:
        server.port = port
        yield server


def test_google_tags_list_manifest_map_gives_digests_for_free(recorded: Recorded) -> None:
    host = f"127.0.0.1:{recorded.port}"
    asked: list[str] = []

    async def never(account: str) -> tuple[str, float]:
        asked.append(account)
        raise AssertionError("a public repository must not need the service account")

    store = CredentialStore(
        [GoogleServiceAccount("p@x.iam.gserviceaccount.com", frozenset({host}), never)]
    )

    async def body() -> None:
        reg, _ = authenticated_registry(host, store)
        try:
            listed = await reg.list_tags("k8s-artifacts-prod/pause")
        finally:
            await reg.aclose()
        assert listed.tags == ("3.9", "latest")
        assert listed.manifests is not None
        assert listed.manifests[DIGEST].tags == ("3.9", "latest")
        assert listed.manifests[CHILD].tags == ()
        assert listed.manifests[DIGEST].media_type == TAGS_LIST["manifest"][DIGEST]["mediaType"]  # type: ignore[index]

    asyncio.run(body())
    assert asked == []  # anonymous access sufficed: the account was never asked
    assert ("/v2/token", "anonymous") in recorded.log


def test_service_account_is_used_only_when_the_registry_demands_it(recorded: Recorded) -> None:
    host = f"127.0.0.1:{recorded.port}"
    asked: list[str] = []

    async def stand_in(account: str) -> tuple[str, float]:
        asked.append(account)
        return ACCESS_TOKEN, 0.0

    account = GoogleServiceAccount(
        "promoter@p.iam.gserviceaccount.com", frozenset({host}), stand_in
    )
    store = CredentialStore([account])

    async def body() -> None:
        reg, _ = authenticated_registry(host, store)
        try:
            await reg.list_tags("public/pause")
            assert asked == []
            listed = await reg.list_tags("private/pause")
            assert listed.manifests is not None
        finally:
            await reg.aclose()

    asyncio.run(body())
    assert asked == [account.account]
    assert ("/v2/private/pause/tags/list", "account") in recorded.log


def test_missing_google_auth_says_what_to_install(
    recorded: Recorded, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whether or not google-auth is installed here, make the import fail as it would without it.
    monkeypatch.setitem(sys.modules, "google", None)
    monkeypatch.setitem(sys.modules, "google.auth", None)
    host = f"127.0.0.1:{recorded.port}"
    store = CredentialStore(
        [GoogleServiceAccount("sa@p.iam.gserviceaccount.com", frozenset({host}))]
    )

    async def body() -> CredentialError:
        reg, _ = authenticated_registry(host, store)
        try:
            await reg.list_tags("public/pause")  # anonymous: google-auth not needed
            with pytest.raises(CredentialError) as raised:
                await reg.list_tags("private/pause")
            return raised.value
        finally:
            await reg.aclose()

    error = asyncio.run(body())
    assert "google-auth" in error.message and "[google]" in error.message
    assert "CIP_AUTH_" in error.message
    assert google_auth_token.__name__ == "google_auth_token"
