"""Registry change events as one value, whichever way they arrive.

Two envelopes carry them:
- a Pub/Sub push (GCR's and Artifact Registry's `gcr` topic): `{"message": {"data": base64
  JSON, "messageId": …}, "subscription": …}` with the payload `{"action": "INSERT"|"DELETE",
  "digest": "host/path@sha256:…", "tag": "host/path:tag"}`, each key optional
  (cloud.google.com/artifact-registry/docs/configure-notifications);
- a CNCF Distribution notification (`application/vnd.docker.distribution.events.v1+json`):
  `{"events": [{id, action, target: {mediaType, digest, repository, tag, references, url},
  request: {host}}]}` (distribution docs "notifications").

A message that cannot be understood is still an event, with `problem` saying why, so that it
gets a verdict (rejected) like any other: the auditor never drops what it was sent.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Literal

from cip.errors import shown
from cip.model.refs import HOST_RE, is_digest, is_repository_path, is_tag
from cip.oci.media import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    INDEX_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    SCHEMA1_TYPES,
)

Source = Literal["pubsub", "distribution", "reconcile"]
Kind = Literal["push", "delete", "invalid"]

MANIFEST_TYPES = frozenset(
    {OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, *SCHEMA1_TYPES}
)
# Distribution also reports pulls, cross-repository mounts and blob uploads; only manifest
# pushes and deletions change what a name serves.
IGNORED_ACTIONS = frozenset({"pull", "mount"})
MAX_SHOWN_PAYLOAD = 2000  # characters of an unreadable payload kept for the verdict


@dataclass(frozen=True, slots=True)
class RegistryEvent:
    """One change to one registry: a push or a deletion of a digest and/or a tag.

    `registry` is `host[:port]` as clients name it; `repository` the path below it. Fields the
    message did not carry are None. `children` are an index's manifests when the message lists
    them (Distribution's `references`), which spares reading the index later.
    """

    source: Source
    id: str | None
    action: str  # as the message wrote it: INSERT, DELETE, push, delete, …
    kind: Kind
    registry: str | None = None
    repository: str | None = None
    digest: str | None = None
    tag: str | None = None
    media_type: str | None = None
    children: tuple[str, ...] = ()
    problem: str | None = None  # why the message is invalid; kind is then "invalid"
    payload: str | None = None  # the message as received, when it is invalid

    @property
    def reference(self) -> str:
        """`registry/repository[:tag][@digest]`, for messages and logs."""
        name = f"{self.registry or '?'}/{self.repository or '?'}"
        if self.tag is not None:
            name += f":{self.tag}"
        if self.digest is not None:
            name += f"@{self.digest}"
        return name


def _invalid(
    source: Source, message_id: str | None, action: str, problem: str, payload: str
) -> RegistryEvent:
    return RegistryEvent(
        source,
        message_id,
        action,
        "invalid",
        problem=problem,
        payload=payload[:MAX_SHOWN_PAYLOAD],
    )


def _json_type(value: object) -> str:
    names = {bool: "boolean", int: "number", float: "number", list: "array", dict: "object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _split_host(name: str) -> tuple[str, str] | None:
    host, slash, path = name.partition("/")
    if not slash or HOST_RE.fullmatch(host) is None or not is_repository_path(path):
        return None
    return host, path


def parse_fqin(fqin: str) -> tuple[str, str, str] | None:
    """`host/path@sha256:…` as (host, path, digest); None when it is not one."""
    parts = fqin.split("@")
    if len(parts) != 2 or not is_digest(parts[1]):
        return None
    where = _split_host(parts[0])
    return None if where is None else (*where, parts[1])


def parse_pqin(pqin: str) -> tuple[str, str, str] | None:
    """`host/path:tag` as (host, path, tag); a colon before the last slash is a port."""
    name, colon, tag = pqin.rpartition(":")
    if not colon or "/" in tag or not is_tag(tag):
        return None
    where = _split_host(name)
    return None if where is None else (*where, tag)


class _Unreadable(ValueError):
    """A push that cannot be read; `message_id` when the envelope named one."""

    def __init__(self, problem: str, message_id: str | None = None) -> None:
        super().__init__(f"parse failure: {problem}")
        self.message_id = message_id


def _pubsub_payload(body: bytes) -> tuple[str | None, dict[str, Any]]:
    """The message id and decoded payload of a push envelope."""
    try:
        envelope = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _Unreadable(f"the body is not JSON ({exc})") from None
    message = envelope.get("message") if isinstance(envelope, dict) else None
    if not isinstance(message, dict):
        raise _Unreadable(
            "not a Pub/Sub push envelope (no 'message' object; payload unwrapping must be off)"
        )
    # The push format spells keys both ways (messageId and message_id). Pub/Sub may redeliver:
    # the id identifies the message even when its data is bad.
    found = message.get("messageId", message.get("message_id"))
    message_id = found if isinstance(found, str) and found else None
    data = message.get("data")
    if not isinstance(data, str):
        raise _Unreadable(f"message.data is {_json_type(data)}, not base64 text", message_id)
    try:
        decoded = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise _Unreadable("message.data is not base64", message_id) from None
    try:
        payload = json.loads(decoded)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _Unreadable(f"message data is not JSON ({exc})", message_id) from None
    if not isinstance(payload, dict):
        raise _Unreadable(f"message data is {_json_type(payload)}, not an object", message_id)
    for key in ("action", "digest", "tag"):
        value = payload.get(key)
        if value is not None and not isinstance(value, str):
            raise _Unreadable(f"'{key}' is {_json_type(value)}, not a string", message_id)
    return message_id, payload


def parse_pubsub(body: bytes) -> RegistryEvent:
    """One Pub/Sub push; validated as upstream's auditor does, with its messages."""
    text = body.decode("utf-8", errors="replace")
    try:
        message_id, payload = _pubsub_payload(body)
    except _Unreadable as exc:
        return _invalid("pubsub", exc.message_id, "", str(exc), text)
    action = payload.get("action") or ""
    fqin: str | None = payload.get("digest") or None
    pqin: str | None = payload.get("tag") or None
    as_received = json.dumps(payload, sort_keys=True)

    def invalid(problem: str) -> RegistryEvent:
        return _invalid("pubsub", message_id, action, problem, as_received)

    if not fqin and not pqin:
        return invalid("neither 'digest' nor 'tag' was specified")
    host = path = digest = tag = None
    if fqin:
        parsed = parse_fqin(fqin)
        if parsed is None:
            return invalid(f"invalid FQIN: {shown(fqin)}")
        host, path, digest = parsed
    if pqin:
        named = parse_pqin(pqin)
        if named is None:
            return invalid(f"invalid PQIN: {shown(pqin)}")
        if host is not None and (host, path) != named[:2]:
            return invalid(
                f"invalid PQIN: {shown(pqin)} (another repository than the digest {shown(fqin or '')})"
            )
        host, path, tag = named
    if action == "":
        return invalid("Action not specified")
    if action not in ("INSERT", "DELETE"):
        return invalid(f"unknown action {json.dumps(action)}")
    return RegistryEvent(
        "pubsub",
        message_id,
        action,
        "push" if action == "INSERT" else "delete",
        registry=host,
        repository=path,
        digest=digest,
        tag=tag,
    )


def parse_distribution(body: bytes, registry: str | None) -> tuple[list[RegistryEvent], int]:
    """The events of one notification, and how many were ignored (pulls, mounts, blobs).

    `registry` names the registry when the endpoint URL says (`?registry=HOST`); otherwise
    each event's `request.host`, the name its client used.
    """
    text = body.decode("utf-8", errors="replace")
    try:
        envelope = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return [_invalid("distribution", None, "", f"the body is not JSON ({exc})", text)], 0
    events = envelope.get("events") if isinstance(envelope, dict) else None
    if not isinstance(events, list):
        problem = "not a Distribution notification (no 'events' list)"
        return [_invalid("distribution", None, "", problem, text)], 0
    out: list[RegistryEvent] = []
    ignored = 0
    for raw in events:
        event = _distribution_event(raw, registry)
        if event is None:
            ignored += 1
        else:
            out.append(event)
    return out, ignored


def _distribution_event(raw: object, registry: str | None) -> RegistryEvent | None:
    as_received = json.dumps(raw, sort_keys=True)
    if not isinstance(raw, dict):
        return _invalid("distribution", None, "", f"an event is {_json_type(raw)}", as_received)
    found_id, action = raw.get("id"), raw.get("action")
    event_id = found_id if isinstance(found_id, str) and found_id else None
    action = action if isinstance(action, str) else ""
    if action in IGNORED_ACTIONS:
        return None

    def invalid(problem: str) -> RegistryEvent:
        return _invalid("distribution", event_id, action, problem, as_received)

    target = raw.get("target")
    request = raw.get("request")
    if not isinstance(target, dict):
        return invalid("the event has no 'target' object")
    if action not in ("push", "delete"):
        return invalid(f"unknown action {json.dumps(action)}")
    found_type, found_url = target.get("mediaType"), target.get("url")
    media_type = found_type if isinstance(found_type, str) else None
    url = found_url if isinstance(found_url, str) else ""
    if action == "push" and media_type not in MANIFEST_TYPES and "/manifests/" not in url:
        return None  # a blob upload: it changes no name
    if registry is None and isinstance(request, dict) and isinstance(request.get("host"), str):
        registry = request["host"]
    if registry is None or HOST_RE.fullmatch(registry) is None:
        return invalid(f"the event names no registry host (request.host is {registry!r})")
    repository, digest, tag = (target.get(k) for k in ("repository", "digest", "tag"))
    if not isinstance(repository, str) or not is_repository_path(repository):
        return invalid(f"invalid repository: {repository!r}")
    if digest is not None and (not isinstance(digest, str) or not is_digest(digest)):
        return invalid(f"invalid digest: {digest!r}")
    if tag is not None and (not isinstance(tag, str) or not is_tag(tag)):
        return invalid(f"invalid tag: {tag!r}")
    if not digest and not tag:
        return invalid("neither 'digest' nor 'tag' was specified")
    children: tuple[str, ...] = ()
    references = target.get("references")
    if media_type in INDEX_TYPES and isinstance(references, list):
        children = tuple(
            ref["digest"]
            for ref in references
            if isinstance(ref, dict) and isinstance(ref.get("digest"), str)
        )
    return RegistryEvent(
        "distribution",
        event_id,
        action,
        action,  # type: ignore[arg-type]  # checked above: push or delete
        registry=registry,
        repository=repository,
        digest=digest or None,
        tag=tag or None,
        media_type=media_type,
        children=children,
    )
