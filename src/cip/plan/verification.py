"""Whether every edge is in place at its destination: the verdicts of `cip verify`, as data.

An edge is in place when its destination tag points at its digest; a tagless edge, when the
digest is in the destination repository. Only edges that are not in place become objects (a
`Gap`); the others are counted, so verifying registry.k8s.io's 720,478 edges holds no object
per edge. Pure, like the planner: groups and observed facts in, a `Verification` out. With a
verify policy, the signatures found missing or invalid on the destinations are kept beside
the gaps (`SignatureCheck`), as data for `report/`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from cip.model.inventory import Inventory
from cip.model.refs import Registry
from cip.plan.edges import EdgeGroup


class GapKind(StrEnum):
    MISSING = "missing"  # the digest is not in the destination repository
    TAG_MISSING = "tag-missing"  # the digest is there, this tag is not
    TAG_ELSEWHERE = "tag-elsewhere"  # the tag points at another digest
    UNREADABLE = "unreadable"  # the destination repository could not be read


GAP_ORDER = tuple(GapKind)


@dataclass(frozen=True, slots=True)
class Gap:
    """One edge not in place."""

    group: int  # index into Verification.groups
    destination: Registry
    tag: str | None  # None for an untagged edge
    kind: GapKind
    current: str | None = None  # TAG_ELSEWHERE: the digest the tag points at now
    error: str | None = None  # UNREADABLE: why


class SignatureProblem(StrEnum):
    MISSING = "missing"  # no signature tag for the digest
    INVALID = "invalid"  # a signature tag whose signatures do not verify under the policy
    UNREADABLE = "unreadable"  # the digest or its signature could not be read


SIGNATURE_ORDER = tuple(SignatureProblem)


@dataclass(frozen=True, slots=True)
class SignatureGap:
    """A destination digest (an index's children included) without a signature the verify
    policy accepts."""

    registry: str
    image: str
    digest: str
    problem: SignatureProblem
    detail: str
    parent: str | None  # the index this digest is a child of
    manifest: str  # the manifest line that promotes it


@dataclass
class SignatureCheck:
    """Signatures checked under a verify policy: how many digests, and every one not signed."""

    checked: int
    gaps: list[SignatureGap]

    def counts(self) -> dict[SignatureProblem, int]:
        counts = dict.fromkeys(SIGNATURE_ORDER, 0)
        for gap in self.gaps:
            counts[gap.problem] += 1
        return counts


@dataclass
class Verification:
    groups: Sequence[EdgeGroup]
    edges: int = 0
    gaps: list[Gap] = field(default_factory=list)
    signatures: SignatureCheck | None = None  # None: no verify policy, signatures not read

    @property
    def ok(self) -> bool:
        return not self.gaps and not (self.signatures and self.signatures.gaps)

    @property
    def in_place(self) -> int:
        return self.edges - len(self.gaps)

    def gap_counts(self) -> dict[GapKind, int]:
        counts = dict.fromkeys(GAP_ORDER, 0)
        for gap in self.gaps:
            counts[gap.kind] += 1
        return counts


def verify(groups: Sequence[EdgeGroup], inventory: Inventory) -> Verification:
    """Every edge of `groups` judged against what the destinations were seen to hold."""
    result = Verification(groups)
    gaps = result.gaps
    for index, group in enumerate(groups):
        tags: tuple[str | None, ...] = group.tags or (None,)
        for destination in group.destinations:
            result.edges += len(tags)
            facts = inventory.get(destination.name, group.image)
            if facts is None or facts.error is not None:
                error = facts.error if facts is not None else "destination was not read"
                gaps.extend(
                    Gap(index, destination, tag, GapKind.UNREADABLE, error=error) for tag in tags
                )
                continue
            held = bool(facts.has_digest(group.digest))
            for tag in tags:
                current = facts.tags.get(tag) if tag is not None else None
                if tag is None or current == group.digest:
                    if not held and tag is None:
                        gaps.append(Gap(index, destination, None, GapKind.MISSING))
                elif current is not None:
                    gaps.append(Gap(index, destination, tag, GapKind.TAG_ELSEWHERE, current))
                else:
                    kind = GapKind.TAG_MISSING if held else GapKind.MISSING
                    gaps.append(Gap(index, destination, tag, kind))
    return result
