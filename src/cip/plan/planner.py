"""The planner: edges plus observed registry facts in, verdicts out, as data.

It is pure (no I/O) so every verdict is testable with literal values. Per (digest, destination)
it decides, in the promoter's set terms: M ∩ D present, (M ∩ S) \\ D copied, M \\ (S ∪ D) lost;
plus what upstream gets wrong: a destination tag on another digest is a refused tag move (tags
never move), and a repository that could not be read fails only the edges touching it.

A refused tag move holds back everything else of that digest for that destination repository:
copying it without the tag would leave an untagged orphan there that no snapshot can see, and
its other tags would publish a release the manifest does not fully describe.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from cip.errors import Unreachable
from cip.model.inventory import Inventory, RepoKey, RepositoryFacts
from cip.model.manifest import Position
from cip.model.refs import Registry
from cip.plan.edges import EdgeGroup


class Action(StrEnum):
    PRESENT = "present"
    COPY = "copy"
    ADD_TAG = "add-tag"
    LOST = "lost"
    TAG_MOVE = "tag-move"
    FAILED = "failed"
    TOO_LARGE = "too-large"  # a copy held back by --max-image-size (cip.promote.imagesize)
    VULNERABLE = "vulnerable"  # a write held back by the vulnerability gate (promote.vulngate)
    # Writes held back by the verification of staging (cip.promote.validate): a signature that
    # does not verify, none when one is required; the same for build provenance.
    SIGNATURE_INVALID = "signature-invalid"
    SIGNATURE_MISSING = "signature-missing"
    PROVENANCE_INVALID = "provenance-invalid"
    PROVENANCE_MISSING = "provenance-missing"


HELD_BACK_BY_STAGING = (
    Action.SIGNATURE_INVALID,
    Action.SIGNATURE_MISSING,
    Action.PROVENANCE_INVALID,
    Action.PROVENANCE_MISSING,
)
PROBLEMS = (
    Action.LOST, Action.TAG_MOVE, Action.FAILED, Action.TOO_LARGE, Action.VULNERABLE,
    *HELD_BACK_BY_STAGING,
)  # fmt: skip
# Verdicts every edge of the digest shares.
WHOLE_DIGEST = (
    Action.LOST, Action.FAILED, Action.TOO_LARGE, Action.VULNERABLE, *HELD_BACK_BY_STAGING,
)  # fmt: skip
# Verdicts after which the digest is at the destination and cip may write there: the ones that
# get signature steps (and whose steps count as done once promoted).
SIGNED_ACTIONS = (Action.COPY, Action.ADD_TAG, Action.PRESENT)


class SignatureStep(StrEnum):
    """What signing does for one digest at one destination, beside the copy."""

    SIGN = "sign"  # the primary destination: cip signs the digest there
    REPLICATE = "replicate-signature"  # another destination: the primary's `.sig` is merged in


class AttestationStep(StrEnum):
    """What attestation does for one listed digest at one destination, after signing."""

    ATTEST = "attest"  # the primary: its promotion attestation is made, or grown, there
    REPLICATE = "replicate-attestation"  # another destination: the primary's is merged in


@dataclass(frozen=True, slots=True)
class SigningPolicy:
    """Signing as the plan sees it: it is on, and which destination signs.

    `primary` is `--primary-registry`; a manifest without that destination (or when it is
    None) signs on its first destination registry, as upstream does.
    """

    primary: str | None = None
    # Where signatures live: "legacy" (the `.sig` tag) and/or "bundle" (a referrer, listed in
    # the `sha256-<hex>` referrers tag cip maintains).
    formats: frozenset[str] = frozenset({"legacy"})
    # Promotion attestations (the attest phase): with the signature's formats, `.att` (legacy)
    # and/or a bundle referrer.
    attest: bool = False

    def primary_of(self, group: EdgeGroup) -> Registry:
        if self.primary is not None:
            for destination in group.destinations:
                if destination.name == self.primary:
                    return destination
        return group.destinations[0]


@dataclass(frozen=True, slots=True)
class TagMove:
    tag: str
    current: str  # the digest the destination tag points at now


@dataclass(frozen=True, slots=True)
class ParentIndex:
    """An index of the same manifests whose children include a lost digest: why it is lost
    (an index's children live in the index's repository, not under another image name)."""

    image: str
    digest: str
    position: Position


@dataclass(frozen=True, slots=True)
class WorstFinding:
    """Why the vulnerability gate held an image back: its worst counted finding, as data for
    the reports (`vulnerable` verdicts)."""

    id: str
    severity: str  # CRITICAL, HIGH, MEDIUM, LOW, MINIMAL or UNKNOWN
    package: str
    installed: str | None
    fixed: str | None
    source: str
    platform: str | None  # the platform of an index it was found on
    counted: int  # findings that hold the image back, this one included


@dataclass(frozen=True, slots=True)
class Verdict:
    """What happens to one digest of one image at one destination (all its tags)."""

    group: int  # index into Plan.groups
    destination: Registry
    # copy / add-tag / present; tag-move (tags_to_add are then held back, nothing is written);
    # lost, failed, too-large (--max-image-size), vulnerable (the vulnerability gate) or held
    # back by staging's verification (signature-invalid, …) for the whole digest
    action: Action
    tags_present: tuple[str, ...] = ()
    tags_to_add: tuple[str, ...] = ()
    tag_moves: tuple[TagMove, ...] = ()
    error: str | None = None  # why, for failed and every verdict that holds a write back
    fresh: bool = False  # the destination repository did not exist when planned
    copied_untagged: bool = False  # a tag moved under a running copy: the digest got there
    parent: ParentIndex | None = None  # for a lost digest: the listed index that has it
    signature: SignatureStep | None = None  # the digest lacks a `.sig` here and signing is on
    vulnerability: WorstFinding | None = None  # for vulnerable: the worst finding, if any
    unreachable: Unreachable | None = None  # for failed: the host that took no connection
    attestation: AttestationStep | None = None  # its promotion attestation is made or merged

    def edge_actions(self) -> Counter[Action]:
        """Per-edge verdicts (an edge is one tag, or the digest alone when untagged)."""
        counts: Counter[Action] = Counter()
        self.count_edges(counts)
        return +counts  # drop zero counts

    def count_edges(self, counts: dict[Action, int]) -> None:
        """Add this verdict's per-edge actions to `counts` (no object per verdict: a plan of
        the Kubernetes corpus has 720,000 edges)."""
        present, to_add, moves = len(self.tags_present), len(self.tags_to_add), len(self.tag_moves)
        action = self.action
        if action in WHOLE_DIGEST:
            counts[action] = counts.get(action, 0) + max(1, present + to_add + moves)
            return
        if not (present or to_add or moves):
            counts[action] = counts.get(action, 0) + 1  # the tagless edge
            return
        if present:
            counts[Action.PRESENT] = counts.get(Action.PRESENT, 0) + present
        if to_add:
            if action is Action.TAG_MOVE:
                added = Action.TAG_MOVE  # held back with the refused tag
            else:
                added = action if action is Action.COPY else Action.ADD_TAG
            counts[added] = counts.get(added, 0) + to_add
        if moves:
            counts[Action.TAG_MOVE] = counts.get(Action.TAG_MOVE, 0) + moves


@dataclass
class Plan:
    groups: Sequence[EdgeGroup]
    verdicts: list[Verdict] = field(default_factory=list)

    def edge_counts(self) -> Counter[Action]:
        total: dict[Action, int] = {}
        for verdict in self.verdicts:
            verdict.count_edges(total)
        return Counter(total)

    @property
    def has_problems(self) -> bool:
        return any(v.action in PROBLEMS or v.tag_moves for v in self.verdicts)

    def writes(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.action in (Action.COPY, Action.ADD_TAG)]

    def signature_steps(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.signature is not None]

    def signature_counts(self) -> Counter[SignatureStep]:
        return Counter(v.signature for v in self.verdicts if v.signature is not None)

    def attestation_counts(self) -> Counter[AttestationStep]:
        return Counter(v.attestation for v in self.verdicts if v.attestation is not None)


@dataclass
class WantedFacts:
    """What the inventory reader must learn about one destination repository."""

    tags: set[str] = field(default_factory=set)
    digests: set[str] = field(default_factory=set)
    source: RepoKey | None = None


def wanted_facts(groups: Sequence[EdgeGroup]) -> dict[RepoKey, WantedFacts]:
    """What to learn per destination repository. Read-only for the caller: the destinations of
    one manifest share one `WantedFacts` per image (registry.k8s.io's 22 mirrors would otherwise
    hold 22 equal copies, about 90 MB); a repository named by several manifests gets its own."""
    per_entry: dict[tuple[int, str], tuple[WantedFacts, tuple[Registry, ...]]] = {}
    for group in groups:
        entry_key = (group.manifest_index, group.image)
        entry = per_entry.get(entry_key)
        if entry is None:
            source = (group.source.name, group.image)
            entry = per_entry[entry_key] = (WantedFacts(source=source), group.destinations)
        entry[0].tags.update(group.tags)
        entry[0].digests.add(group.digest)
    wanted: dict[RepoKey, WantedFacts] = {}
    for (_, image), (facts, destinations) in per_entry.items():
        for destination in destinations:
            key = (destination.name, image)
            found = wanted.get(key)
            if found is None:
                wanted[key] = facts
            elif found is not facts:  # a second manifest promotes this image here too
                wanted[key] = WantedFacts(
                    found.tags | facts.tags, found.digests | facts.digests, found.source
                )
    return wanted


def plan(
    groups: Sequence[EdgeGroup], inventory: Inventory, signing: SigningPolicy | None = None
) -> Plan:
    result = Plan(groups)
    for index, group in enumerate(groups):
        source = inventory.get(group.source.name, group.image)
        verdicts = [_judge(index, group, d, inventory, source) for d in group.destinations]
        if signing is not None:
            verdicts = _trust_steps(verdicts, group, inventory, signing)
        result.verdicts.extend(verdicts)
    return result


def _trust_steps(
    verdicts: list[Verdict], group: EdgeGroup, inventory: Inventory, signing: SigningPolicy
) -> list[Verdict]:
    """Signature and attestation steps of one digest's verdicts (see `_missing`).

    The primary signs where it lacks a signature, and attests where any destination lacks an
    attestation: a destination without one may be new, so the primary's attestation is checked
    for it and grown when it does not name it (the step reads the primary's attestation then).
    Every other destination merges in what it lacks, and all of them do when the primary
    attests, since what the primary attests must reach them.
    """
    primary = signing.primary_of(group)
    formats = signing.formats
    out: list[Verdict] = []
    for verdict in verdicts:
        if _missing(verdict, group, inventory, formats, "sig"):
            step = SignatureStep.SIGN if verdict.destination == primary else SignatureStep.REPLICATE
            verdict = replace(verdict, signature=step)  # only then: a copy per verdict costs
        out.append(verdict)  # seconds on the whole corpus
    if not signing.attest:
        return out
    lacking = {
        v.destination.name
        for v in verdicts
        if v.action in SIGNED_ACTIONS and _missing(v, group, inventory, formats, "att")
    }
    attest_primary = bool(lacking) and any(
        v.destination == primary and v.action in SIGNED_ACTIONS for v in verdicts
    )
    for position, verdict in enumerate(out):
        if verdict.action not in SIGNED_ACTIONS:
            continue
        if verdict.destination == primary:
            step_a = AttestationStep.ATTEST if attest_primary else None
        elif verdict.destination.name in lacking or attest_primary:
            step_a = AttestationStep.REPLICATE
        else:
            step_a = None
        if step_a is not None:
            out[position] = replace(verdict, attestation=step_a)
    return out


def _missing(
    verdict: Verdict, group: EdgeGroup, inventory: Inventory, formats: frozenset[str], kind: str
) -> bool:
    """Whether the digest is (or will be) at the destination without its `.sig` (kind "sig")
    or `.att` tag there (or, for bundles, without a referrers tag).

    The tag listing the inventory reads anyway shows which digests carry a `.sig`, so this costs
    no request: a rerun after a crash between copy and sign, or after a `.sig` was deleted,
    finds the digest unsigned and repairs it, and a rerun with everything signed does nothing.
    """
    if verdict.action not in SIGNED_ACTIONS:
        return False  # lost, failed, or a refused tag move: nothing is written there
    facts = inventory.get(verdict.destination.name, group.image)
    if facts is None:
        return True
    legacy = facts.signed if kind == "sig" else facts.attested
    return not all(
        group.digest in (legacy if fmt == "legacy" else facts.referred) for fmt in formats
    )


def _judge(
    index: int,
    group: EdgeGroup,
    destination: Registry,
    inventory: Inventory,
    src: RepositoryFacts | None,
) -> Verdict:
    facts = inventory.get(destination.name, group.image)
    if facts is None or facts.error is not None:
        error = facts.error if facts is not None else "destination was not read"
        unreachable = facts.unreachable if facts is not None else None
        return Verdict(
            index,
            destination,
            Action.FAILED,
            tags_to_add=group.tags,
            error=error,
            unreachable=unreachable,
        )
    present: list[str] = []
    to_add: list[str] = []
    moves: list[TagMove] = []
    for tag in group.tags:
        current = facts.tags.get(tag)
        if current is None:
            to_add.append(tag)
        elif current == group.digest:
            present.append(tag)
        else:
            moves.append(TagMove(tag, current))
    if facts.has_digest(group.digest) or present:
        action = Action.TAG_MOVE if moves else Action.ADD_TAG if to_add else Action.PRESENT
        if action is Action.PRESENT:  # the usual case: share the group's tuple, no new one
            return Verdict(index, destination, action, group.tags)
        return Verdict(index, destination, action, tuple(present), tuple(to_add), tuple(moves))
    if src is not None and src.error is not None:
        return Verdict(
            index,
            destination,
            Action.FAILED,
            tags_to_add=tuple(to_add),
            error=src.error,
            unreachable=src.unreachable,
        )
    if src is not None and src.has_digest(group.digest):
        action = Action.TAG_MOVE if moves else Action.COPY
        return Verdict(
            index, destination, action, (), tuple(to_add), tuple(moves), fresh=facts.missing
        )
    if src is None or src.has_digest(group.digest) is None:
        error = "source was not read"
        return Verdict(index, destination, Action.FAILED, tags_to_add=tuple(to_add), error=error)
    return Verdict(index, destination, Action.LOST, (), tuple(to_add), tuple(moves))
