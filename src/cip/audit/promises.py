"""What the manifests promise to each production repository, indexed for one lookup per event.

Built once from the planner's edges: every destination repository (registry host and path
below it) with the digests and tags promoted there, where each was written, and the source
repository each digest comes from (where a parent index can still be read before it reaches
production). Also, per destination registry, every digest listed for it under any image name:
a child image arrives under its index's repository, not under the name the manifests give it
(issue 402), so a digest listed for a destination is recognised without reading a registry.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from cip.model.manifest import Position
from cip.model.refs import Registry as RegistryName
from cip.plan.edges import EdgeGroup

RepositoryKey = tuple[str, str]  # (registry key: host[:port] or oci:DIR, path below it)


def registry_key(registry: RegistryName) -> str:
    """How events name a registry (`host[:port]`); `oci:DIR` for a folder of layouts."""
    return f"oci:{registry.oci_dir}" if registry.oci_dir is not None else registry.host


@dataclass(frozen=True, slots=True)
class Listing:
    """One image entry's claim on a digest: the name, the place, and where it comes from."""

    image: str
    position: Position
    source: RegistryName


@dataclass(slots=True)
class RepositoryPromise:
    """Everything the manifests put into one destination repository.

    One image entry promises the same to every destination of its manifest, so one promise
    is shared by all those repositories (the corpus' 720,000 edges become 20,000 entries);
    a repository that several manifests promote to gets a merged copy.
    """

    digests: dict[str, Listing] = field(default_factory=dict)  # digest -> first listing
    tags: dict[str, str] = field(default_factory=dict)  # tag -> digest
    tag_positions: dict[str, Position] = field(default_factory=dict)

    def merged(self, other: RepositoryPromise) -> RepositoryPromise:
        """Both promises in a new one; the first listing of a digest or tag wins."""
        return RepositoryPromise(
            {**other.digests, **self.digests},
            {**other.tags, **self.tags},
            {**other.tag_positions, **self.tag_positions},
        )


@dataclass
class Promises:
    repositories: dict[RepositoryKey, RepositoryPromise] = field(default_factory=dict)
    # destination registry (as written) -> for each manifest naming it, digest -> a listing
    listed: dict[str, list[dict[str, Listing]]] = field(default_factory=dict)
    destinations: dict[str, list[RegistryName]] = field(default_factory=dict)  # by key

    @classmethod
    def from_edges(cls, groups: Iterable[EdgeGroup]) -> Promises:
        images: dict[tuple[int, str], RepositoryPromise] = {}
        manifests: dict[int, tuple[tuple[RegistryName, ...], dict[str, Listing]]] = {}
        for group in groups:
            found = manifests.get(group.manifest_index)
            if found is None:
                found = manifests[group.manifest_index] = (group.destinations, {})
            listing = Listing(group.image, group.position, group.source)
            found[1].setdefault(group.digest, listing)
            promise = images.get((group.manifest_index, group.image))
            if promise is None:
                promise = images[(group.manifest_index, group.image)] = RepositoryPromise()
            promise.digests.setdefault(group.digest, listing)
            for tag in group.tags:
                # Validation refused a destination tag mapped to two digests.
                promise.tags.setdefault(tag, group.digest)
                promise.tag_positions.setdefault(tag, group.position)
        promises = cls()
        seen: set[RegistryName] = set()
        for destinations, listed in manifests.values():
            for destination in destinations:
                promises.listed.setdefault(destination.name, []).append(listed)
                if destination not in seen:
                    seen.add(destination)
                    promises.destinations.setdefault(registry_key(destination), []).append(
                        destination
                    )
        for (index, image), promise in images.items():
            for destination in manifests[index][0]:
                key = (registry_key(destination), destination.repository(image))
                known = promises.repositories.get(key)
                promises.repositories[key] = promise if known is None else known.merged(promise)
        return promises

    def repository(self, registry: str, repository: str) -> RepositoryPromise | None:
        return self.repositories.get((registry, repository))

    def registries_of(self, registry: str, repository: str) -> list[RegistryName]:
        """The destination registries whose path holds `repository` on `registry`."""
        return [
            destination
            for destination in self.destinations.get(registry, [])
            if not destination.path or repository.startswith(destination.path + "/")
        ]

    def listed_for(self, registry: str, repository: str, digest: str) -> Listing | None:
        """An image entry listing `digest`, under any name, for a destination holding
        `repository`: how a child image is recognised from the manifests alone."""
        for destination in self.registries_of(registry, repository):
            for listed in self.listed.get(destination.name, ()):
                found = listed.get(digest)
                if found is not None:
                    return found
        return None

    def registry_name(self, registry: str) -> RegistryName | None:
        """A destination on `registry`, to open a client for it."""
        known = self.destinations.get(registry)
        return known[0] if known else None
