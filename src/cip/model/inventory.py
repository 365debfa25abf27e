"""What registries were observed to hold, as plain values the planner can judge.

Only facts the plan needs are read (see `cip.plan.planner.wanted_facts`), so an inventory is
partial by design: a tag missing from `tags` was not listed; a digest missing from `digests`
was not asked about. `error` records a repository that could not be read; every edge touching
it fails, and no other edge does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cip.errors import Unreachable

RepoKey = tuple[str, str]  # (registry name as written in the manifest, image name)


@dataclass(slots=True)
class RepositoryFacts:
    tags: dict[str, str] = field(default_factory=dict)  # tag -> digest
    digests: dict[str, bool] = field(default_factory=dict)  # digest -> present
    media_types: dict[str, str] = field(default_factory=dict)  # digest -> type, where seen
    signed: set[str] = field(default_factory=set)  # digests whose `.sig` tag was listed
    attested: set[str] = field(default_factory=set)  # digests whose `.att` tag was listed
    referred: set[str] = field(default_factory=set)  # digests whose referrers tag was listed
    missing: bool = False  # the repository does not exist (yet): nothing is in it
    error: str | None = None
    unreachable: Unreachable | None = None  # why `error`: its host took no connection

    def has_digest(self, digest: str) -> bool | None:
        """True/False when known, None when nobody asked."""
        known = self.digests.get(digest)
        if known is not None:
            return known
        if digest in self.tags.values():
            return True
        return None


@dataclass(slots=True)
class Inventory:
    """Facts per repository of destination and source registries."""

    repositories: dict[RepoKey, RepositoryFacts] = field(default_factory=dict)

    def facts(self, registry: str, image: str) -> RepositoryFacts:
        key = (registry, image)
        found = self.repositories.get(key)
        if found is None:
            found = self.repositories[key] = RepositoryFacts()
        return found

    def get(self, registry: str, image: str) -> RepositoryFacts | None:
        return self.repositories.get((registry, image))
