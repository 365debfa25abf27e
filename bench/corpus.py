"""The deterministic image set of the promotion cases, and the files each tool reads.

Fixed seeds give the same digests on every run and machine. Repository names are one path
component below a prefix (`stage/r007`), because `skopeo sync` keeps only the last component
of a source repository: cip's `prod/r007` and skopeo's `prod/r007` are then the same name, and
the mirrors of both tools can be compared tag by tag.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from tests.lab.images import Image, docker_manifest_list, oci_image, oci_index, push

from cip.registry.connect import open_http_registry

MIB = 1024 * 1024
SOURCE_PREFIX = "stage"
MIRROR_PREFIX = "prod"


@dataclass(frozen=True)
class Entry:
    """One repository: its images and the tag of each."""

    name: str
    tagged: tuple[tuple[Image, str], ...]


@dataclass(frozen=True)
class Corpus:
    entries: tuple[Entry, ...]

    @property
    def tags(self) -> int:
        return sum(len(e.tagged) for e in self.entries)

    @property
    def bytes(self) -> int:
        def size(image: Image) -> int:
            return sum(b.size for b in image.blobs) + sum(size(c) for c in image.children)

        return sum(size(image) for e in self.entries for image, _ in e.tagged)

    def expected(self, prefix: str = MIRROR_PREFIX) -> dict[str, dict[str, str]]:
        """repository → tag → digest, as a mirror below `prefix` must hold it."""
        return {
            f"{prefix}/{e.name}": {tag: image.digest for image, tag in e.tagged}
            for e in self.entries
        }


def promotion_corpus(
    small_repos: int, multi_arch: int, large: int, *, large_size: int = 50 * MIB
) -> Corpus:
    """`small_repos` × 3 tags (v1..v3, one small image each), indexes, and large-layer images.

    Multi-arch images alternate between OCI indexes (2 platforms) and Docker manifest lists
    (3 platforms), so both index formats and their digests are exercised.
    """
    entries = [
        Entry(f"r{i:04d}", tuple((oci_image(10_000 + i * 10 + v), f"v{v}") for v in (1, 2, 3)))
        for i in range(small_repos)
    ]
    for i in range(multi_arch):
        index = oci_index(500 + i) if i % 2 == 0 else docker_manifest_list(500 + i)
        entries.append(Entry(f"multi{i}", ((index, "v1"),)))
    for i in range(large):
        entries.append(Entry(f"large{i}", ((oci_image(700 + i, large_layer=large_size), "v1"),)))
    return Corpus(tuple(entries))


async def _push_all(host: str, corpus: Corpus, prefix: str, concurrency: int) -> None:
    limit = asyncio.Semaphore(concurrency)
    async with open_http_registry(host) as client:

        async def one(entry: Entry) -> None:
            async with limit:
                for image, tag in entry.tagged:
                    await push(client, f"{prefix}/{entry.name}", image, tag)

        await asyncio.gather(*(one(e) for e in corpus.entries))


def push_corpus(host: str, corpus: Corpus, prefix: str = SOURCE_PREFIX) -> None:
    """Fill a staging registry through cip's own client, one repository per task."""
    asyncio.run(_push_all(host, corpus, prefix, concurrency=16))


def cip_manifest(path: Path, source: str, mirrors: Sequence[str], entries: Sequence[Entry]) -> Path:
    """A plain promoter manifest: `source` (src: true) → every mirror, each tag as listed."""
    body = {
        "registries": [{"name": source, "src": True}, *({"name": m} for m in mirrors)],
        "images": [
            {"name": e.name, "dmap": _dmap(e)}
            for e in entries  # one digest may carry several tags
        ],
    }
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def _dmap(entry: Entry) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for image, tag in entry.tagged:
        out.setdefault(image.digest, []).append(tag)
    return out


def skopeo_sync_yaml(path: Path, source_host: str, corpus: Corpus, prefix: str) -> Path:
    """The `skopeo sync --src yaml` input naming exactly the tags cip's manifest names."""
    body = {
        source_host: {
            "tls-verify": False,
            "images": {f"{prefix}/{e.name}": [tag for _, tag in e.tagged] for e in corpus.entries},
        }
    }
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path
