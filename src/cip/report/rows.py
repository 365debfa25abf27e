"""A plan regrouped the way people read it: one row per image digest, its verdicts by action."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cip.plan.planner import (
    HELD_BACK_BY_STAGING,
    SIGNED_ACTIONS,
    Action,
    AttestationStep,
    Plan,
    SignatureStep,
    Verdict,
)

if TYPE_CHECKING:
    from cip.promote.copy import CopyStats  # annotations only: no event loop for --parse-only

ORDER = (
    Action.COPY, Action.ADD_TAG, Action.PRESENT, Action.LOST, Action.TAG_MOVE, Action.FAILED,
    Action.TOO_LARGE, Action.VULNERABLE, *HELD_BACK_BY_STAGING,
)  # fmt: skip
# Verdicts only some runs can give (a flag asks for them): text totals name them when they occur.
OPTIONAL = (Action.TOO_LARGE, Action.VULNERABLE, *HELD_BACK_BY_STAGING)
# Verdicts whose `error` says why.
EXPLAINED = (Action.FAILED, Action.TOO_LARGE, Action.VULNERABLE, *HELD_BACK_BY_STAGING)


@dataclass
class DigestRow:
    """Everything a plan does with one image digest of one name, over its destinations.

    `name` is what people read: the image name, qualified as `subproject/image` when several
    subprojects use that name (their rows would otherwise look like one image).
    """

    image: str
    digest: str
    name: str = ""
    tags: set[str] = field(default_factory=set)
    where: str = ""
    by_action: dict[Action, list[Verdict]] = field(default_factory=dict)
    signatures: Counter[SignatureStep] = field(default_factory=Counter)  # destinations per step
    attestations: Counter[AttestationStep] = field(default_factory=Counter)


def display_names(plan: Plan) -> dict[tuple[str, str], str]:
    """(subproject, image) -> the name reports show for it."""
    owners: dict[str, set[str]] = {}
    for group in plan.groups:
        owners.setdefault(group.image, set()).add(group.subproject)
    return {
        (subproject, image): f"{subproject}/{image}" if len(found) > 1 else image
        for image, found in owners.items()
        for subproject in found
    }


def digest_rows(plan: Plan) -> list[DigestRow]:
    names = display_names(plan)
    rows: dict[tuple[str, str], DigestRow] = {}
    for verdict in plan.verdicts:
        group = plan.groups[verdict.group]
        name = names[(group.subproject, group.image)]
        row = rows.get((name, group.digest))
        if row is None:
            row = rows[(name, group.digest)] = DigestRow(
                group.image, group.digest, name, where=str(group.position)
            )
        row.tags.update(group.tags)
        row.by_action.setdefault(verdict.action, []).append(verdict)
        if verdict.signature is not None and verdict.action in SIGNED_ACTIONS:
            row.signatures[verdict.signature] += 1
        if verdict.attestation is not None and verdict.action in SIGNED_ACTIONS:
            row.attestations[verdict.attestation] += 1
        if verdict.tag_moves and verdict.action is not Action.TAG_MOVE:
            row.by_action.setdefault(Action.TAG_MOVE, []).append(verdict)  # a lost digest's
    return sorted(rows.values(), key=lambda r: (r.name, r.digest))


def promotion_result(plan: Plan, stats: CopyStats) -> str:
    """What a run with --confirm did, in words that never claim a promotion that did not happen.

    `promoted` only when something was written and no edge is left with a problem;
    `partially promoted` when something was written and some edge was not; otherwise (nothing
    needed writing, or every write failed) `nothing promoted`. `plan` is the executed plan.
    """
    if stats.manifests_written == 0 and stats.tags_written == 0:
        return "nothing promoted"
    return "partially promoted" if plan.has_problems else "promoted"


def signature_totals(plan: Plan) -> dict[str, int]:
    """Signature steps over the plan (failed ones excluded: they are reported as problems)."""
    counts: Counter[SignatureStep] = Counter(
        v.signature for v in plan.verdicts if v.signature is not None and v.action in SIGNED_ACTIONS
    )
    return {str(step): counts.get(step, 0) for step in SignatureStep}


def attestation_totals(plan: Plan) -> dict[str, int]:
    """Attestation steps over the plan (failed ones excluded, as for signatures)."""
    counts: Counter[AttestationStep] = Counter(
        v.attestation
        for v in plan.verdicts
        if v.attestation is not None and v.action in SIGNED_ACTIONS
    )
    return {str(step): counts.get(step, 0) for step in AttestationStep}
