"""Reading registry change events: Pub/Sub names with ports, and Distribution envelopes."""

from __future__ import annotations

import base64
import json

import pytest

from cip.audit.events import parse_distribution, parse_fqin, parse_pqin, parse_pubsub

DIGEST = "sha256:" + "a" * 64


def push(payload: object, message_id: str = "7") -> bytes:
    data = base64.b64encode(json.dumps(payload).encode()).decode()
    return json.dumps({"message": {"data": data, "message_id": message_id}}).encode()


@pytest.mark.parametrize(
    ("fqin", "expected"),
    [
        (f"gcr.io/foo/bar@{DIGEST}", ("gcr.io", "foo/bar", DIGEST)),
        # A registry with a port: upstream split on ':' and refused these.
        (f"127.0.0.1:5000/foo/bar@{DIGEST}", ("127.0.0.1:5000", "foo/bar", DIGEST)),
        (f"us-docker.pkg.dev/p/r/img@{DIGEST}", ("us-docker.pkg.dev", "p/r/img", DIGEST)),
        ("gcr.io/foo/bar@sha256:000", None),  # not a digest
        (f"gcr.io@{DIGEST}", None),  # no repository
        (f"gcr.io/Foo@{DIGEST}", None),  # repository paths are lowercase
        (f"gcr.io/foo@{DIGEST}@{DIGEST}", None),
    ],
)
def test_fqin(fqin: str, expected: tuple[str, str, str] | None) -> None:
    assert parse_fqin(fqin) == expected


@pytest.mark.parametrize(
    ("pqin", "expected"),
    [
        ("gcr.io/foo/bar:1.0", ("gcr.io", "foo/bar", "1.0")),
        ("127.0.0.1:5000/foo/bar:v1", ("127.0.0.1:5000", "foo/bar", "v1")),
        ("127.0.0.1:5000/foo/bar", None),  # the colon is the port's: no tag
        ("gcr.io/foo/bar:", None),
        ("gcr.io/foo/bar:-x", None),  # tags start with a word character
    ],
)
def test_pqin(pqin: str, expected: tuple[str, str, str] | None) -> None:
    assert parse_pqin(pqin) == expected


def test_pubsub_insert_with_port_and_tag() -> None:
    event = parse_pubsub(
        push(
            {
                "action": "INSERT",
                "digest": f"127.0.0.1:5000/prod/app@{DIGEST}",
                "tag": "127.0.0.1:5000/prod/app:1.0",
            }
        )
    )
    assert (event.kind, event.id, event.registry, event.repository) == (
        "push",
        "7",
        "127.0.0.1:5000",
        "prod/app",
    )
    assert (event.digest, event.tag, event.problem) == (DIGEST, "1.0", None)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"[", "parse failure: the body is not JSON"),
        (b'{"subscription": "s"}', "not a Pub/Sub push envelope"),
        (b'{"message": {"data": "%%%", "messageId": "1"}}', "message.data is not base64"),
        (b'{"message": {"data": 5}}', "message.data is number, not base64 text"),
        (push([1, 2]), "message data is array, not an object"),
        (push({"tag": ["x"]}), "'tag' is array, not a string"),
        (
            push({"action": "INSERT", "digest": f"gcr.io/a/b@{DIGEST}", "tag": "gcr.io/a/c:1"}),
            "another repository than the digest",
        ),
    ],
)
def test_unreadable_pushes_are_invalid_events_with_the_reason(body: bytes, problem: str) -> None:
    event = parse_pubsub(body)
    assert event.kind == "invalid"
    assert event.problem is not None and problem in event.problem
    assert event.payload is not None


def test_distribution_envelope_keeps_manifest_changes_and_an_indexs_children() -> None:
    child = "sha256:" + "b" * 64
    envelope = {
        "events": [
            {"id": "p", "action": "pull", "target": {"repository": "x/y", "digest": DIGEST}},
            {"id": "m", "action": "mount", "target": {"repository": "x/y", "digest": DIGEST}},
            {
                "id": "b",
                "action": "push",
                "target": {
                    "mediaType": "application/octet-stream",
                    "repository": "x/y",
                    "digest": DIGEST,
                    "url": "http://r/v2/x/y/blobs/" + DIGEST,
                },
                "request": {"host": "r.example:5000"},
            },
            {
                "id": "i",
                "action": "push",
                "target": {
                    "mediaType": "application/vnd.oci.image.index.v1+json",
                    "repository": "x/y",
                    "digest": DIGEST,
                    "references": [{"digest": child, "size": 1, "mediaType": "m"}],
                },
                "request": {"host": "r.example:5000"},
            },
            {"id": "d", "action": "delete", "target": {"repository": "x/y", "tag": "1"}},
        ]
    }
    events, ignored = parse_distribution(json.dumps(envelope).encode(), None)
    assert ignored == 3
    index, deletion = events
    assert (index.id, index.registry, index.children) == ("i", "r.example:5000", (child,))
    # No request.host and no ?registry=: which registry it is about is unknown.
    assert deletion.kind == "invalid" and "names no registry host" in (deletion.problem or "")
    named, _ = parse_distribution(json.dumps({"events": envelope["events"][4:]}).encode(), "r:1")
    assert (named[0].kind, named[0].registry, named[0].tag) == ("delete", "r:1", "1")
