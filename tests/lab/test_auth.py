"""Logging in to real registries: htpasswd Basic, token auth with a token server we run, TLS
with a private CA, credential helpers that expire, and no secret in any output."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from cip.errors import RegistryError
from cip.transport.auth import Token
from cip.transport.challenge import request_scopes
from cip.transport.credentials import (
    AuthFile,
    Credential,
    CredentialError,
    CredentialStore,
    EnvCredentials,
    Secret,
    env_variable,
)
from cip.transport.settings import NetworkOptions
from tests.lab import images
from tests.lab.auth_lab import (
    KeyPair,
    TokenServer,
    basic_auth_config,
    htpasswd,
    running_token_server,
    self_signed,
    server_certificate,
    tls_config,
)
from tests.lab.registry_lab import LabRegistry
from tests.lab.stack import authenticated_registry, settled_entries

PASSWORD = "pa55-Secret-Value-9f3"
REFRESH = "refresh-token-7c1e-Secret"


def env_store(host: str, user: str = "alice", password: str = PASSWORD) -> CredentialStore:
    return CredentialStore([EnvCredentials({env_variable(host): f"{user}:{password}"})])


# -- Basic ------------------------------------------------------------------------------------


@pytest.fixture
def basic_registry(registry_factory: Callable[..., LabRegistry], tmp_path: Path) -> LabRegistry:
    path = htpasswd(tmp_path / "htpasswd", {"alice": PASSWORD})
    return registry_factory(basic_auth_config(path))


def test_basic_auth_challenges_once_then_preauthorizes(basic_registry: LabRegistry) -> None:
    image = images.oci_index(50)
    blob = images.seeded_blob(51, 300_000)

    async def chunks() -> AsyncIterator[bytes]:
        for chunk in blob.chunks(65536):
            yield chunk

    async def body() -> None:
        reg, _ = authenticated_registry(basic_registry.host, env_store(basic_registry.host))
        try:
            # A streamed body as the very first request: the scheme is learnt from /v2/ first.
            await reg.upload_blob("lab/b", blob.digest, chunks())
            await images.push(reg, "lab/b", image, "v1")
            assert (await reg.get_manifest("lab/b", "v1")).data == image.manifest
        finally:
            await reg.aclose()

    mark = len(settled_entries(basic_registry))
    asyncio.run(body())
    statuses = [e.status for e in settled_entries(basic_registry)[mark:]]
    assert statuses.count(401) == 1  # the /v2/ probe; everything after carried credentials


def test_basic_auth_without_or_with_wrong_credentials_fails_clearly(
    basic_registry: LabRegistry,
) -> None:
    async def attempt(store: CredentialStore | None) -> RegistryError:
        reg, _ = authenticated_registry(basic_registry.host, store)
        try:
            with pytest.raises(RegistryError) as raised:
                await reg.get_manifest("lab/b", "v1")
            return raised.value
        finally:
            await reg.aclose()

    for store in (None, env_store(basic_registry.host, password="wrong")):
        error = asyncio.run(attempt(store))
        assert error.status == 401 and not error.retryable


# -- Token ------------------------------------------------------------------------------------


@pytest.fixture
def signer() -> KeyPair:
    return self_signed("cip-lab-token-signer")


@pytest.fixture
def token_server(signer: KeyPair) -> Iterator[TokenServer]:
    server = TokenServer(
        signer,
        users={"alice": PASSWORD, "bob": "bob-" + PASSWORD},
        refresh_tokens={REFRESH: "alice"},
        grants={"bob": {"pull"}},
    )
    with running_token_server(server):
        yield server


@pytest.fixture
def token_registry(
    registry_factory: Callable[..., LabRegistry],
    token_server: TokenServer,
    signer: KeyPair,
    tmp_path: Path,
) -> LabRegistry:
    bundle, _ = signer.write(tmp_path, "token-signer")
    return registry_factory(token_server.registry_config(bundle))


def test_bearer_tokens_per_scope_with_pull_push_and_mount(
    token_registry: LabRegistry, token_server: TokenServer
) -> None:
    image = images.docker_image(52)
    layer = image.blobs[-1]

    async def body() -> None:
        reg, auth = authenticated_registry(token_registry.host, env_store(token_registry.host))
        try:
            await reg.ping()
            await images.push(reg, "lab/src", image, "v1")
            assert (await reg.mount_blob("lab/dst", layer.digest, "lab/src")).mounted
            for _ in range(3):
                assert await reg.head_manifest("lab/src", "v1") is not None
            assert "scheme=bearer" in repr(auth)
        finally:
            await reg.aclose()

    mark = len(settled_entries(token_registry))
    asyncio.run(body())
    registry_statuses = [e.status for e in settled_entries(token_registry)[mark:]]
    # One 401, for the ping, which taught the scheme: every later request carried a token
    # fetched before sending.
    assert registry_statuses.count(401) == 1
    scopes = [r.scopes for r in token_server.requests]
    assert ("repository:lab/src:pull",) in scopes
    assert ("repository:lab/src:pull,push",) in scopes
    assert ("repository:lab/dst:pull,push", "repository:lab/src:pull") in scopes
    assert len(scopes) == len(set(scopes))  # cached per scope: each asked once
    assert {r.user for r in token_server.requests} == {"alice"}


def test_expired_or_refused_tokens_are_fetched_again(
    token_registry: LabRegistry, token_server: TokenServer
) -> None:
    image = images.oci_image(53)
    now = [1000.0]

    async def body() -> None:
        reg, auth = authenticated_registry(token_registry.host, env_store(token_registry.host))
        auth._clock = lambda: now[0]  # the token cache's clock, advanced by hand
        try:
            await images.push(reg, "lab/e", image, "v1")
            fetched = len(token_server.requests)
            await reg.head_manifest("lab/e", "v1")
            assert len(token_server.requests) == fetched  # still valid: cached
            now[0] += 61  # past expires_in (60 s)
            await reg.head_manifest("lab/e", "v1")
            assert len(token_server.requests) == fetched + 1
            # A token the registry no longer accepts (revoked, rotated key): 401, then a new one.
            scope = ("repository:lab/e:pull",)
            auth._tokens[scope] = Token(Secret("not-a-jwt"), now[0] + 3600)
            assert await reg.head_manifest("lab/e", "v1") is not None
            assert len(token_server.requests) == fetched + 2
        finally:
            await reg.aclose()

    asyncio.run(body())


def test_pull_only_user_cannot_push_and_is_told_so(
    token_registry: LabRegistry, token_server: TokenServer
) -> None:
    async def body() -> RegistryError:
        store = env_store(token_registry.host, "bob", "bob-" + PASSWORD)
        reg, _ = authenticated_registry(token_registry.host, store)
        try:
            with pytest.raises(RegistryError) as raised:
                await images.push(reg, "lab/ro", images.oci_image(54), "v1")
            return raised.value
        finally:
            await reg.aclose()

    error = asyncio.run(body())
    assert error.status == 401 and "lab/ro" in error.message


def test_no_credentials_for_a_token_registry_names_where_it_looked(
    token_registry: LabRegistry, tmp_path: Path
) -> None:
    store = CredentialStore.from_environment({"HOME": str(tmp_path)})

    async def body() -> CredentialError:
        reg, _ = authenticated_registry(token_registry.host, store)
        try:
            with pytest.raises(CredentialError) as raised:
                await reg.head_manifest("lab/x", "v1")
            return raised.value
        finally:
            await reg.aclose()

    error = asyncio.run(body())
    assert "requires credentials" in error.message and "CIP_AUTH_" in error.message
    assert str(tmp_path / ".docker" / "config.json") in error.message


def _helper(bin_dir: Path, name: str, answers: Path, calls: Path) -> None:
    """A `docker-credential-NAME` that answers with the first line of `answers` and pops it."""
    script = bin_dir / f"docker-credential-{name}"
    script.write_text(
        "#!/bin/sh\n"
        f'read server; echo "$server" >> "{calls}"\n'
        f'line=$(head -n 1 "{answers}"); sed -i 1d "{answers}"\n'
        'printf \'{"ServerURL":"%s","Username":"alice","Secret":"%s"}\' "$server" "$line"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def test_credential_helper_is_run_again_when_its_answer_expired(
    token_registry: LabRegistry,
    token_server: TokenServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bin_dir, docker_dir = tmp_path / "bin", tmp_path / "docker"
    bin_dir.mkdir()
    docker_dir.mkdir()
    answers, calls = tmp_path / "answers", tmp_path / "calls"
    answers.write_text(f"expired-{PASSWORD}\n{PASSWORD}\n")
    _helper(bin_dir, "cilab", answers, calls)
    config = {"credHelpers": {token_registry.host: "cilab"}}
    (docker_dir / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    store = CredentialStore.from_environment(
        {"DOCKER_CONFIG": str(docker_dir), "HOME": str(tmp_path)}
    )

    async def body() -> None:
        reg, _ = authenticated_registry(token_registry.host, store)
        try:
            await images.push(reg, "lab/h", images.oci_image(55), "v1")
        finally:
            await reg.aclose()

    asyncio.run(body())
    assert calls.read_text().split() == [token_registry.host] * 2  # asked, refused, asked again
    assert [r.status for r in token_server.requests[:2]] == [401, 200]


def test_identity_token_uses_the_oauth2_refresh_grant(
    token_registry: LabRegistry, token_server: TokenServer, tmp_path: Path
) -> None:
    auth_file = tmp_path / "auth.json"
    auth_file.write_text(json.dumps({"auths": {token_registry.host: {"identitytoken": REFRESH}}}))
    store = CredentialStore([AuthFile(auth_file, "containers auth file")])

    async def body() -> None:
        reg, _ = authenticated_registry(token_registry.host, store)
        try:
            await images.push(reg, "lab/i", images.oci_image(56), "v1")
        finally:
            await reg.aclose()

    asyncio.run(body())
    assert {r.method for r in token_server.requests} == {"POST"}


def test_no_secret_in_logs_errors_or_reprs(
    token_registry: LabRegistry,
    token_server: TokenServer,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)  # cip's transport logs every request at DEBUG
    shown: list[str] = []
    good = env_store(token_registry.host)

    async def body() -> None:
        reg, auth = authenticated_registry(token_registry.host, good)
        try:
            await images.push(reg, "lab/s", images.oci_image(57), "v1")
            credential = await good.get(token_registry.host)
            shown.extend([repr(credential), str(credential), f"{credential}", repr(good)])
            shown.extend([repr(auth), repr(auth._tokens), repr(auth.challenge)])
        finally:
            await reg.aclose()
        bad, _ = authenticated_registry(
            token_registry.host, env_store(token_registry.host, password=PASSWORD + "x")
        )
        try:
            with pytest.raises(RegistryError) as raised:
                await bad.get_manifest("lab/s", "v1")
            shown.extend([str(raised.value), raised.value.render(), repr(raised.value)])
        finally:
            await bad.aclose()

    asyncio.run(body())
    captured = capsys.readouterr()
    everything = "\n".join([*shown, caplog.text, captured.out, captured.err])
    assert "HTTP Request" in caplog.text  # the logs were really captured
    assert token_server.issued
    for secret in (PASSWORD, REFRESH, *token_server.issued):
        assert secret not in everything
    assert "Secret('********')" in everything


def test_scopes_follow_path_and_method() -> None:
    from yarl import URL

    def scopes(method: str, url: str) -> tuple[str, ...]:
        return request_scopes(method, URL(url))

    base = "https://r.example/v2"
    assert scopes("HEAD", f"{base}/a/b/manifests/v1") == ("repository:a/b:pull",)
    assert scopes("PUT", f"{base}/a/manifests/v1") == ("repository:a:pull,push",)
    assert scopes("DELETE", f"{base}/a/manifests/sha256:00") == ("repository:a:delete",)
    assert scopes("POST", f"{base}/d/blobs/uploads/?mount=sha256:00&from=s/x") == (
        "repository:d:pull,push",
        "repository:s/x:pull",
    )
    assert scopes("GET", f"{base}/_catalog?n=10") == ("registry:catalog:*",)
    assert scopes("GET", f"{base}/") == ()
    assert Credential("u", Secret("p")).basic_auth() == "Basic dTpw"


# -- TLS --------------------------------------------------------------------------------------


def test_tls_registry_with_a_private_ca(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    ca = self_signed("cip-lab-ca")
    ca_file, _ = ca.write(tmp_path, "ca")
    cert, key = server_certificate(ca).write(tmp_path, "server")
    lab = registry_factory(tls_config(cert, key))
    image = images.oci_image(58)

    async def body() -> None:
        reg, _ = authenticated_registry(
            lab.host, None, options=NetworkOptions(ca_file=str(ca_file))
        )
        try:
            await reg.ping()
            assert await reg.base_url() == f"https://{lab.host}"
            await images.push(reg, "lab/tls", image, "v1")
            assert (await reg.get_manifest("lab/tls", "v1")).digest == image.digest
        finally:
            await reg.aclose()
        # Not trusting the CA: refused (and never silently downgraded to plain HTTP).
        untrusted, _ = authenticated_registry(lab.host, None)
        try:
            with pytest.raises(RegistryError):
                await untrusted.get_manifest("lab/tls", "v1")
        finally:
            await untrusted.aclose()

    asyncio.run(body())
