"""`tag-move`: no tag in the change points at another digest than production holds under it.

Production is read as a promotion would read it (the planner's tag-move verdict): the tag
listing of each destination repository, and the digest of every tag the change names. A
destination that cannot be read is an error too: a check that could not look has not passed.
"""

from __future__ import annotations

from cip.checks.context import CheckContext
from cip.checks.findings import Check, Finding
from cip.model.refs import short_digest

ID = "tag-move"


async def run(context: CheckContext) -> list[Finding]:
    if not context.change.selected:
        return []
    inventory, plan = await context.plan()
    moved: dict[tuple[int, str, str], list[str]] = {}  # (group, tag, current) -> destinations
    unreadable: dict[tuple[str, str], list[int]] = {}  # (destination, error) -> groups
    for verdict in plan.verdicts:
        group = plan.groups[verdict.group]
        for move in verdict.tag_moves:
            key = (verdict.group, move.tag, move.current)
            moved.setdefault(key, []).append(verdict.destination.name)
        facts = inventory.get(verdict.destination.name, group.image)
        error = "not read" if facts is None else facts.error
        if error is not None:
            unreadable.setdefault((verdict.destination.name, error), []).append(verdict.group)
    findings: list[Finding] = []
    for (index, tag, current), destinations in moved.items():
        group = plan.groups[index]
        where = ", ".join(f"{d}/{group.image}" for d in sorted(destinations))
        findings.append(
            Finding.at(
                ID,
                "error",
                f"tag {tag} of {group.image} is {current} at {where}; the change points it at "
                f"{short_digest(group.digest)}: tags never move",
                group.position,
                image=group.image,
                digest=group.digest,
            )
        )
    for (destination, error), indexes in unreadable.items():
        for index in sorted(set(indexes)):
            group = plan.groups[index]
            findings.append(
                Finding.at(
                    ID,
                    "error",
                    f"cannot tell whether tags of {group.image} move: {destination} could not "
                    f"be read: {error}",
                    group.position,
                    image=group.image,
                    digest=group.digest,
                    registry=destination,
                )
            )
    return findings


CHECK = Check(ID, "no changed tag points at another digest than production holds", run)
