"""Shards: one run split into N parts that share no image name and no digest.

The parts are the connected components of the graph image name ↔ digest over every manifest:
a digest listed under several names (child images listed beside their index), or a name listed
by several subprojects, keeps all of them together. So the work on one digest (its copy once
per mirror host, its signature once) stays in one process, and no edge is written by two.

A component goes to shard `sha256(key) mod N`, its key being its smallest image name: stable
across runs, machines and Python versions (Python's own `hash` of a string is salted per
process). The assignment is computed over every manifest's edges, before any `--diff-base` or
`--image` selection, so a shard owns the same images whatever a run selects.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cip.plan.edges import EdgeGroup


@dataclass(frozen=True, slots=True)
class Shard:
    index: int
    count: int

    def __str__(self) -> str:
        return f"shard {self.index} of {self.count} (0-based)"


def shard_key_bucket(key: str, count: int) -> int:
    """The shard of a component whose key is `key`."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % count


class _Components:
    """Union-find over image names and digests (no recursion: the corpus has 20,000 nodes)."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, node: str) -> str:
        parent = self.parent.setdefault(node, node)
        root = node
        while parent != root:
            root, parent = parent, self.parent[parent]
        while node != root:  # path compression
            following = self.parent[node]
            self.parent[node] = root
            node = following
        return root

    def union(self, a: str, b: str) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self.parent[max(root_a, root_b)] = min(root_a, root_b)


def image_shards(groups: Iterable[EdgeGroup], count: int) -> dict[str, int]:
    """The shard of every image name (each name belongs to exactly one component)."""
    components = _Components()
    for group in groups:
        components.union(f"image:{group.image}", f"digest:{group.digest}")
    smallest: dict[str, str] = {}
    images = [node for node in components.parent if node.startswith("image:")]
    for node in images:
        root = components.find(node)
        name = node.removeprefix("image:")
        if root not in smallest or name < smallest[root]:
            smallest[root] = name
    return {
        node.removeprefix("image:"): shard_key_bucket(smallest[components.find(node)], count)
        for node in images
    }


def select_shard(
    everything: Sequence[EdgeGroup], selected: Sequence[EdgeGroup], shard: Shard
) -> list[EdgeGroup]:
    """The `selected` groups that belong to `shard`, components computed over `everything`."""
    owner = image_shards(everything, shard.count)
    return [g for g in selected if owner[g.image] == shard.index]
