"""Promotion edges, kept compact.

An edge is manifest × image × digest × destination × tag; the Kubernetes corpus has 720,478 of
them. One Python object per edge would cost hundreds of megabytes, so edges are grouped by
(manifest, image, digest): the group holds the tags once and shares the manifest's destination
tuple. Counting edges stays possible without materialising them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cip.model.manifest import Position, PromoterManifest
from cip.model.refs import Registry, is_attached_tag


@dataclass(frozen=True, slots=True)
class EdgeGroup:
    """Every edge of one digest of one image of one manifest."""

    manifest_index: int
    image: str
    digest: str
    tags: tuple[str, ...]
    source: Registry
    destinations: tuple[Registry, ...]
    position: Position
    subproject: str = ""  # qualifies `image` in reports where the name is ambiguous

    @property
    def edge_count(self) -> int:
        return max(1, len(self.tags)) * len(self.destinations)


@dataclass(frozen=True)
class EdgeSummary:
    """The labelled numbers `cip run --parse-only` prints."""

    manifests: int
    image_entries: int
    unique_digests: int
    tag_entries: int
    destination_registries: int
    destination_repositories: int
    edges: int


def build_edges(manifests: Sequence[PromoterManifest]) -> list[EdgeGroup]:
    groups: list[EdgeGroup] = []
    for index, manifest in enumerate(manifests):
        source = manifest.source.registry
        destinations = tuple(spec.registry for spec in manifest.destinations)
        if not destinations:
            continue
        for image in manifest.images:
            for digest, tags in image.dmap.items():
                groups.append(
                    EdgeGroup(
                        index,
                        image.name,
                        digest,
                        # Attached-artifact tags are merged by signing, never promoted as tags.
                        tuple(t for t in tags if not is_attached_tag(t)),
                        source,
                        destinations,
                        image.digest_positions[digest],
                        manifest.subproject,
                    )
                )
    return groups


def summarize(manifests: Sequence[PromoterManifest], groups: Sequence[EdgeGroup]) -> EdgeSummary:
    registries: set[str] = set()
    repositories: set[tuple[str, str]] = set()
    for manifest in manifests:
        names = [spec.name for spec in manifest.destinations]
        registries.update(names)
        for image in manifest.images:
            repositories.update((name, image.name) for name in names)
    return EdgeSummary(
        manifests=len(manifests),
        image_entries=sum(m.entries_written for m in manifests),
        unique_digests=len({g.digest for g in groups} | _all_digests(manifests)),
        tag_entries=sum(m.tag_entries for m in manifests),
        destination_registries=len(registries),
        destination_repositories=len(repositories),
        edges=sum(g.edge_count for g in groups),
    )


def _all_digests(manifests: Sequence[PromoterManifest]) -> set[str]:
    # Digests of manifests without destinations still count as digests the manifests name.
    return {digest for m in manifests for image in m.images for digest in image.dmap}
