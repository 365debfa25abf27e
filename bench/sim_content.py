"""What the synthetic registry holds, as plain data: repositories, tags, digests, media types.

A content set is what a benchmark or a test says a registry holds; no blob and no image bytes
are needed for the questions a plan asks (which tags, which digests). A manifest may carry its
bytes (then a GET returns them and its digest is theirs); without bytes it answers HEAD and
listings only. Several hosts can share one content set: registry.k8s.io's 22 regional mirrors
hold the same repositories, and sharing keeps the simulator's memory small.

The JSON form (`to_json` / `from_json`) is what `python -m bench.registry_sim SPEC` reads:

    {"contents": {"prod": {"repo/path": {"sha256:…": {"mediaType": "…", "size": 1234,
                                                      "tags": ["v1"], "data": "{…}"}}}},
     "hosts": [{"name": "us-east1-docker.pkg.dev", "content": "prod", "google": true}]}
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
GOOGLE_TIME_MS = "1717632000000"  # a fixed upload time, so listings are byte-for-byte stable


@dataclass(frozen=True, slots=True)
class SimManifest:
    media_type: str
    size: int
    data: bytes | None = None  # None: HEAD and listings only, a GET answers 501


@dataclass(slots=True)
class SimRepository:
    tags: dict[str, str] = field(default_factory=dict)  # tag -> digest
    manifests: dict[str, SimManifest] = field(default_factory=dict)  # digest -> manifest


@dataclass
class SimContent:
    """Repositories by path below the host; listings are serialised once and kept."""

    repositories: dict[str, SimRepository] = field(default_factory=dict)
    _listings: dict[tuple[str, bool], bytes] = field(default_factory=dict, repr=False)
    _children: dict[str, list[str]] | None = field(default=None, repr=False)

    def add(
        self,
        repository: str,
        digest: str,
        tags: Iterable[str] = (),
        *,
        media_type: str = DOCKER_MANIFEST_LIST,
        size: int = 1024,
        data: bytes | None = None,
    ) -> None:
        """Hold `digest` in `repository` with `tags`; with `data`, the digest must be its hash."""
        if data is not None:
            actual = "sha256:" + hashlib.sha256(data).hexdigest()
            if actual != digest:
                raise ValueError(f"{repository}@{digest}: the bytes hash to {actual}")
            size = len(data)
        repo = self.repositories.setdefault(repository, SimRepository())
        repo.manifests[digest] = SimManifest(media_type, size, data)
        for tag in tags:
            repo.tags[tag] = digest
        self._listings.clear()
        self._children = None

    def children(self, prefix: str) -> list[str]:
        """Names one level below `prefix` that lead to repositories (GCR's `child` list)."""
        if self._children is None:
            found: dict[str, set[str]] = {}
            for name in self.repositories:
                parts = name.split("/")
                for depth in range(1, len(parts)):
                    found.setdefault("/".join(parts[:depth]), set()).add(parts[depth])
            self._children = {key: sorted(names) for key, names in found.items()}
        return self._children.get(prefix, [])

    def listing(self, repository: str, google: bool) -> bytes | None:
        """The tags/list body, or None when nothing is at that path.

        With `google`, the shape Google Container Registry and Artifact Registry answer:
        `child` (sub-paths), `manifest` (digest -> imageSizeBytes, layerId, mediaType, tag,
        timeCreatedMs, timeUploadedMs; sizes and times as strings, as Google sends them),
        `name` and `tags`. A path holding only sub-repositories lists its children there.
        """
        key = (repository, google)
        cached = self._listings.get(key)
        if cached is not None:
            return cached
        repo = self.repositories.get(repository)
        children = self.children(repository) if google else []
        if repo is None and not children:
            return None
        repo = repo or SimRepository()
        body: dict[str, Any] = {"name": repository, "tags": sorted(repo.tags)}
        if google:
            tags_of: dict[str, list[str]] = {}
            for tag, digest in repo.tags.items():
                tags_of.setdefault(digest, []).append(tag)
            body["child"] = children
            body["manifest"] = {
                digest: {
                    "imageSizeBytes": str(item.size),
                    "layerId": "",
                    "mediaType": item.media_type,
                    "tag": sorted(tags_of.get(digest, [])),
                    "timeCreatedMs": GOOGLE_TIME_MS,
                    "timeUploadedMs": GOOGLE_TIME_MS,
                }
                for digest, item in repo.manifests.items()
            }
        encoded = json.dumps(body, separators=(",", ":")).encode()
        self._listings[key] = encoded
        return encoded

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, repo in self.repositories.items():
            tags_of: dict[str, list[str]] = {}
            for tag, digest in repo.tags.items():
                tags_of.setdefault(digest, []).append(tag)
            entries: dict[str, Any] = {}
            for digest, item in repo.manifests.items():
                entry: dict[str, Any] = {"mediaType": item.media_type, "size": item.size}
                entry["tags"] = tags_of.get(digest, [])
                if item.data is not None:
                    entry["data"] = item.data.decode()
                entries[digest] = entry
            out[name] = entries
        return out

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> SimContent:
        content = cls()
        for name, entries in body.items():
            for digest, entry in entries.items():
                data = entry.get("data")
                content.add(
                    name,
                    digest,
                    entry.get("tags") or (),
                    media_type=entry.get("mediaType", DOCKER_MANIFEST_LIST),
                    size=int(entry.get("size", 1024)),
                    data=data.encode() if data is not None else None,
                )
        return content


@dataclass(frozen=True)
class SimHost:
    """One simulated registry host: its name (for counts), what it holds, how it lists tags."""

    name: str
    content: SimContent
    google: bool = False  # tags/list with Google's `manifest` extension and `child`


def spec_json(hosts: Iterable[SimHost]) -> dict[str, Any]:
    """The JSON spec of `hosts`, each shared content set written once."""
    keys: dict[int, str] = {}
    contents: dict[str, Any] = {}
    listed: list[dict[str, Any]] = []
    for host in hosts:
        key = keys.get(id(host.content))
        if key is None:
            key = keys[id(host.content)] = f"c{len(keys)}"
            contents[key] = host.content.to_json()
        listed.append({"name": host.name, "content": key, "google": host.google})
    return {"contents": contents, "hosts": listed}


def hosts_from_spec(spec: Mapping[str, Any]) -> list[SimHost]:
    contents = {key: SimContent.from_json(body) for key, body in spec["contents"].items()}
    return [
        SimHost(str(h["name"]), contents[h["content"]], bool(h.get("google", False)))
        for h in spec["hosts"]
    ]
