"""The registry client against a registry that answers nonsense: only cip's errors come out.

A real aiohttp server on 127.0.0.1 answers every Distribution API request the client makes
with what hypothesis generates (manifests, headers, token service answers, error bodies,
listings), and the real client (`registry/http.py` over the `transport/` stack) is driven
through every read and a few writes. Whatever the answers, each operation either returns
well-formed values or raises a `CipError` naming the registry, never a KeyError, TypeError,
ValueError, UnicodeError or an aiohttp exception, and never hangs.

CI runs a short profile; `CIP_FUZZ_EXAMPLES=N` runs N examples per test for a longer hunt.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from cip.errors import CipError, RegistryError
from cip.oci import media
from cip.registry.client import Manifest, ManifestInfo, TagList
from cip.registry.connect import create_http_registry
from cip.registry.http import HttpRegistry
from cip.transport.credentials import CredentialStore, EnvCredentials, env_variable
from cip.transport.retry import RetryPolicy

EXAMPLES = int(os.environ.get("CIP_FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    phases=[Phase.explicit, Phase.reuse, Phase.generate]
    + ([] if os.environ.get("CIP_FUZZ_NO_SHRINK") else [Phase.shrink]),
)
REPOSITORY = "lab/app"
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$|^sha512:[0-9a-f]{128}$")
OTHER = "sha256:" + "e" * 64
REALM = "{realm}"  # replaced by the server's own token URL when answering


def digest_of(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


@dataclass(frozen=True)
class Reply:
    """One HTTP answer; `digest_header` "auto" means the digest of the body actually sent."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    digest_header: str | None = None


@dataclass
class Scenario:
    """How the fake registry answers each kind of request during one example."""

    challenge: str | None = None  # WWW-Authenticate for requests without Authorization
    replies: dict[str, Reply] = field(default_factory=dict)


class FuzzRegistry:
    """An aiohttp server in a thread of its own, answering from the current `Scenario`."""

    def __init__(self) -> None:
        self.scenario = Scenario()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._answer)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _kind(self, path: str) -> str:
        if path == "/token":
            return "token"
        if path in ("/v2/", "/v2"):
            return "ping"
        if path.startswith("/v2/_catalog"):
            return "catalog"
        for kind in ("tags", "manifests", "referrers"):
            if f"/{kind}/" in path:
                return kind
        return "uploads" if "/blobs/uploads/" in path else "blobs"

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        scenario = self.scenario
        kind = self._kind(request.path)
        realm = f"http://{self.host}/token"
        if kind != "token" and scenario.challenge and "Authorization" not in request.headers:
            challenge = scenario.challenge.replace(REALM, realm)
            return web.Response(status=401, headers={"WWW-Authenticate": challenge})
        reply = scenario.replies.get(kind, Reply(404))
        headers = {k: v.replace(REALM, realm) for k, v in reply.headers.items()}
        if reply.digest_header is not None:
            headers["Docker-Content-Digest"] = (
                digest_of(reply.body) if reply.digest_header == "auto" else reply.digest_header
            )
        if request.method == "HEAD" and "Content-Length" in headers:
            # A HEAD answer may announce any length: it carries no body to contradict it.
            response = web.StreamResponse(status=reply.status, headers=headers)
            await response.prepare(request)
            return response
        headers.pop("Content-Length", None)
        return web.Response(status=reply.status, headers=headers, body=reply.body)


@pytest.fixture(scope="module")
def server() -> Iterator[FuzzRegistry]:
    registry = FuzzRegistry()
    registry.start()
    yield registry
    registry.stop()


# -- what the server says ---------------------------------------------------------------------

# Header values as a server may send them: printable Latin-1 and beyond, never CR or LF.
header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x3FF, exclude_characters="\x7f"),
    max_size=24,
)
junk = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["sha256:" + "a" * 64, "sha256:zz", "md5:x", media.OCI_MANIFEST, ""]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)  # fmt: skip
media_types = (
    st.sampled_from(
        [
            media.OCI_MANIFEST,
            media.OCI_INDEX,
            media.DOCKER_MANIFEST,
            media.DOCKER_MANIFEST_LIST,
            media.DOCKER_SCHEMA1,
            media.DOCKER_SCHEMA1_SIGNED,
            "application/json",
            "text/html; charset=utf-8",
            "",
        ]
    )
    | header_text
)
digests = st.sampled_from(
    ["sha256:" + "a" * 64, OTHER, "sha256:" + "A" * 64, "sha256:zz", "sha512:ab", "md5:x", "x", ""]
)
sizes = st.one_of(
    st.integers(min_value=-5, max_value=2**70), st.floats(), st.text(max_size=4), st.none()
)


@st.composite
def descriptors(draw: st.DrawFn) -> object:
    if draw(st.integers(0, 9)) == 0:
        return draw(junk)
    raw: dict[str, object] = {
        "mediaType": draw(media_types | junk),
        "digest": draw(digests | junk),
        "size": draw(sizes),
    }
    for key in ("urls", "annotations", "platform", "artifactType"):
        if draw(st.booleans()):
            raw[key] = draw(junk)
    if draw(st.booleans()):
        del raw[draw(st.sampled_from(["mediaType", "digest", "size"]))]
    return raw


@st.composite
def manifest_bodies(draw: st.DrawFn) -> bytes:
    shape = draw(st.integers(0, 5))
    if shape == 0:
        return draw(st.binary(max_size=40))
    if shape == 1:
        return json.dumps(draw(junk)).encode()
    document: dict[str, object] = {
        "schemaVersion": draw(st.sampled_from([2, 1, "2", None, 2.5])),
        "mediaType": draw(media_types | junk),
    }
    if draw(st.booleans()):
        document["config"] = draw(descriptors())
    for key in ("layers", "manifests"):
        if draw(st.booleans()):
            document[key] = draw(st.lists(descriptors(), max_size=3) | junk)
    for key in ("subject", "annotations", "artifactType", "signatures"):
        if draw(st.integers(0, 3)) == 0:
            document[key] = draw(descriptors() if key == "subject" else junk)
    text = json.dumps(document)
    return (text.encode("utf-16") if shape == 5 else text.encode())[
        : draw(st.sampled_from([10**6, 30]))
    ]


error_bodies = st.one_of(
    st.binary(max_size=30),
    st.builds(lambda e: json.dumps({"errors": e}).encode(), junk),
    st.builds(
        lambda c, m: json.dumps({"errors": [{"code": c, "message": m}]}).encode(), junk, junk
    ),
)
statuses = st.sampled_from(
    [200, 200, 200, 200, 201, 202, 204, 206, 301, 307, 400, 401, 403, 404, 408, 429, 500, 501, 503]
)
link_values = (
    st.sampled_from(
        [
            '</v2/_catalog?n=1&last=a>; rel="next"',
            '</v2/lab/app/tags/list?n=1&last=a>; rel="next"',
            '</v2/lab/app/referrers/sha256:aa>; rel="next"',
            '<http://[::1>; rel="next"',
            '<>; rel="next"',
            '<ftp://example.invalid/x>; rel="next"',
            '<http://127.0.0.1:1/v2/_catalog>; rel="next"',
            'rel="next"',
            "<x",
            "<http://a b/>; rel=next",
        ]
    )
    | header_text
)
location_values = (
    st.sampled_from(
        ["/v2/lab/app/blobs/uploads/u1?_state=x", "http://[::1", "ftp://x/y", "", "//", "%zz"]
    )
    | header_text
)
challenges = (
    st.none()
    | st.sampled_from(
        [
            f'Bearer realm="{REALM}",service="fuzz",scope="repository:lab/app:pull"',
            f'Bearer realm="{REALM}"',
            f"Bearer realm={REALM},scope=",
            'Bearer service="fuzz"',
            'Bearer realm=""',
            'Bearer realm="ftp://example.invalid/token"',
            'Bearer realm="http://[::1"',
            'Bearer realm="http://127.0.0.1:1/token"',
            'Bearer realm="not a url"',
            'Basic realm="fuzz"',
            "Basic",
            "Bearer",
            "Negotiate abc",
            'Bearer realm="\\',
        ]
    )
    | header_text
)
token_values = st.one_of(
    st.text(max_size=16),
    st.sampled_from(["tok\r\nX-Injected: 1", "tök", "\u2603", "", "ok-token"]),
    junk,
)
token_bodies = st.one_of(
    st.binary(max_size=30),
    st.builds(lambda j: json.dumps(j).encode(), junk),
    st.fixed_dictionaries(
        {},
        optional={"token": token_values, "access_token": token_values, "expires_in": junk},
    ).map(lambda d: json.dumps(d).encode()),
)


def headers_with(**extra: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, str]]:
    """A few of the named headers, each present or not, plus an odd one out."""
    return st.fixed_dictionaries(
        {},
        optional={
            "Content-Type": media_types,
            "Retry-After": st.sampled_from(["1", "0", "99999999999", "²", "Wed, 21 Oct 2015 07:28:00 GMT", "-1"])
            | header_text,
            **extra,
        },
    )  # fmt: skip


@st.composite
def replies(draw: st.DrawFn, kind: str) -> Reply:
    status = draw(statuses)
    extra: dict[str, st.SearchStrategy[str]] = {}
    body: bytes
    digest_header: str | None = None
    if kind in ("catalog", "tags", "referrers"):
        extra["Link"] = link_values
    if kind in ("uploads", "blobs", "manifests"):
        extra["Location"] = location_values
    if kind == "manifests":
        extra["Content-Length"] = st.sampled_from(["0", "12", "99999999999999", "1" * 30])
    headers = draw(headers_with(**extra))
    if status >= 300:
        body = draw(error_bodies)
    elif kind == "token":
        body = draw(token_bodies)
    elif kind == "catalog":
        body = json.dumps(
            draw(st.fixed_dictionaries({}, optional={"repositories": junk}) | junk)
        ).encode()
    elif kind == "tags":
        listing = draw(
            st.fixed_dictionaries(
                {"name": st.just(REPOSITORY)},
                optional={
                    "tags": st.lists(st.text(max_size=6) | junk, max_size=3) | junk,
                    "manifest": st.dictionaries(
                        digests | st.text(max_size=6),
                        st.fixed_dictionaries(
                            {},
                            optional={"tag": junk, "mediaType": junk, "imageSizeBytes": junk},
                        )
                        | junk,
                        max_size=3,
                    )
                    | junk,
                },
            )
        )
        body = json.dumps(listing).encode()
    elif kind in ("manifests", "referrers"):
        body = draw(manifest_bodies())
        digest_header = draw(st.sampled_from(["auto", "auto", None]) | digests | header_text)
    else:
        body = draw(st.binary(max_size=30))
        digest_header = draw(st.none() | digests)
    return Reply(status, headers, body, digest_header)


KINDS = ("ping", "token", "catalog", "tags", "manifests", "referrers", "uploads", "blobs")
scenarios = st.builds(
    Scenario,
    challenge=challenges,
    replies=st.fixed_dictionaries({kind: replies(kind) for kind in KINDS}),
)


# -- driving the client -----------------------------------------------------------------------


def check_value(value: object) -> None:
    """What the client returns must be well formed, or it should have raised."""
    if isinstance(value, ManifestInfo):
        assert DIGEST_RE.match(value.digest), value
        assert isinstance(value.media_type, str)
        assert isinstance(value.size, int) and value.size >= 0
    elif isinstance(value, Manifest):
        assert DIGEST_RE.match(value.digest) and value.digest == digest_of(value.data)
        assert isinstance(value.media_type, str)
        value.parse()  # a manifest handed out can be read (or raises a CipError)
    elif isinstance(value, TagList):
        assert all(isinstance(t, str) for t in value.tags)
        for digest, listed in (value.manifests or {}).items():
            assert DIGEST_RE.match(digest) and listed.digest == digest
            assert all(isinstance(t, str) for t in listed.tags)
            assert listed.media_type is None or isinstance(listed.media_type, str)


async def collect(iterator: Any) -> list[Any]:
    return [item async for item in iterator]


def operations(registry: HttpRegistry) -> list[tuple[str, Callable[[], Awaitable[object]]]]:
    wanted = "sha256:" + "a" * 64
    return [
        ("ping", registry.ping),
        ("catalog", lambda: collect(registry.catalog())),
        ("list_tags", lambda: registry.list_tags(REPOSITORY)),
        ("head_manifest tag", lambda: registry.head_manifest(REPOSITORY, "v1")),
        ("head_manifest digest", lambda: registry.head_manifest(REPOSITORY, wanted)),
        ("get_manifest tag", lambda: registry.get_manifest(REPOSITORY, "v1")),
        ("get_manifest digest", lambda: registry.get_manifest(REPOSITORY, wanted)),
        ("referrers", lambda: registry.referrers(REPOSITORY, wanted)),
        ("blob_exists", lambda: registry.blob_exists(REPOSITORY, wanted)),
        ("stream_blob", lambda: collect(registry.stream_blob(REPOSITORY, wanted))),
        ("put_manifest", lambda: registry.put_manifest(REPOSITORY, "v1", b"{}", media.OCI_MANIFEST)),
        ("mount_blob", lambda: registry.mount_blob(REPOSITORY, wanted, "lab/other")),
        ("upload_blob", lambda: registry.upload_blob(REPOSITORY, digest_of(b"x"), b"x")),
    ]  # fmt: skip


async def drive(host: str, only: tuple[str, ...] | None = None) -> list[tuple[str, str]]:
    """Every operation once against the current scenario; what each did, for the report."""
    registry = create_http_registry(
        host,
        credentials=CredentialStore([EnvCredentials({env_variable(host): "fuzz:secret"})]),
        retry=RetryPolicy(budget_seconds=0.0, attempts=1),
        timeout=5.0,
    )
    outcomes: list[tuple[str, str]] = []
    try:
        for name, operation in operations(registry):
            if only is not None and name.split()[0] not in only:
                continue
            try:
                value = await asyncio.wait_for(operation(), timeout=30)
            except CipError as error:
                assert isinstance(error, RegistryError), (name, error)
                assert error.registry, f"{name}: {error.message} names no registry"
                assert error.diagnostics, name
                outcomes.append((name, type(error).__name__))
            except TimeoutError:
                pytest.fail(f"{name} did not finish within 30 s (a loop on a malformed answer?)")
            else:
                for item in value if isinstance(value, list) else [value]:
                    check_value(item)
                outcomes.append((name, "ok"))
    finally:
        await registry.aclose()
    return outcomes


@FUZZ
@given(scenario=scenarios)
def test_any_answers_raise_only_cip_errors(server: FuzzRegistry, scenario: Scenario) -> None:
    server.scenario = scenario
    asyncio.run(drive(server.host))


# Each test below keeps most answers well formed so the malformed one is reached every time.
GOOD_TAGS = Reply(200, {}, json.dumps({"name": REPOSITORY, "tags": ["v1"]}).encode())


BEARER = f'Bearer realm="{REALM}",service="fuzz"'


def token_answer(body: object, status: int = 200) -> Reply:
    return Reply(status, {}, json.dumps(body).encode())


@FUZZ
@given(challenge=challenges, token=replies("token"))
@example(challenge=BEARER, token=token_answer({"token": "t\r\nX-Injected: 1"}))
@example(challenge=BEARER, token=token_answer({"token": "t\u00f6k\u2603"}))
@example(challenge=BEARER, token=token_answer({"access_token": ["t"], "expires_in": "soon"}))
@example(challenge=BEARER, token=token_answer({"token": "t", "expires_in": -(10**400)}))
@example(challenge=BEARER, token=Reply(200, {}, b"\xff\xfe"))
@example(challenge='Bearer realm="http://[::1"', token=token_answer({"token": "t"}))
@example(challenge='Bearer realm="ftp://example.invalid/t"', token=token_answer({"token": "t"}))
def test_token_service_answers_raise_only_cip_errors(
    server: FuzzRegistry, challenge: str | None, token: Reply
) -> None:
    server.scenario = Scenario(challenge, {"tags": GOOD_TAGS, "token": token})
    asyncio.run(drive(server.host, only=("list_tags", "put_manifest")))


@FUZZ
@given(manifest=replies("manifests"))
@example(manifest=Reply(429, {"Retry-After": "\u00b2"}))
@example(manifest=Reply(200, {}, b"{}", digest_header="sha256:" + "A" * 64))
@example(manifest=Reply(200, {}, b"\x80", digest_header="auto"))
@example(manifest=Reply(200, {}, b'{"layers": [{"digest": "sha256:zz", "size": -1}]}'))
def test_manifest_answers_raise_only_cip_errors(server: FuzzRegistry, manifest: Reply) -> None:
    server.scenario = Scenario(None, {"manifests": manifest, "referrers": Reply(404)})
    asyncio.run(drive(server.host, only=("head_manifest", "get_manifest", "referrers")))


@FUZZ
@given(tags=replies("tags"), catalog=replies("catalog"))
@example(
    tags=Reply(200, {"Link": '</v2/lab/app/tags/list>; rel="next"'}, GOOD_TAGS.body),
    catalog=Reply(200, {"Link": '<http://[::1>; rel="next"'}, b'{"repositories": [1]}'),
)
@example(
    tags=Reply(200, {}, json.dumps({"tags": ["v1"], "manifest": {"x": {"tag": 5}}}).encode()),
    catalog=Reply(200, {"Link": '</v2/_catalog?n=1>; rel="next"'}, b'{"repositories": []}'),
)
def test_listings_raise_only_cip_errors(server: FuzzRegistry, tags: Reply, catalog: Reply) -> None:
    server.scenario = Scenario(None, {"tags": tags, "catalog": catalog})
    asyncio.run(drive(server.host, only=("list_tags", "catalog")))
