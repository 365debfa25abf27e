"""`cip run --vuln-severity-threshold`: hold back writes of images the vulnerability gate fails.

Every copy and add-tag is judged (a new tag on a vulnerable image publishes it as much as a
copy does); an image already present is left as it is. Each source digest is assessed once,
however many destinations and tags it has, and all of them concurrently. A held-back verdict
says why in one line (the worst finding first) and carries the worst finding as data; what a
reader should know beyond verdicts (reports not used, expired allowlist entries) comes back as
warnings.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from cip.errors import Diagnostic
from cip.plan.planner import Action, Plan, Verdict, WorstFinding
from cip.registry.pool import RegistryPool
from cip.vuln.gate import Assessment, VulnGate

JUDGED = (Action.COPY, Action.ADD_TAG)


def worst_finding(assessment: Assessment) -> WorstFinding | None:
    worst = assessment.worst
    if worst is None:
        return None
    return WorstFinding(
        worst.id,
        worst.severity.label,
        worst.package,
        worst.installed,
        worst.fixed,
        worst.source,
        ", ".join(assessment.platforms_of(worst)) or None,
        len(assessment.judgement.blocking),
    )


def assessment_warnings(assessment: Assessment, image: str) -> list[Diagnostic]:
    return [
        Diagnostic(
            message,
            "warning",
            file=where.file if where else None,
            line=where.line if where else None,
            column=where.column if where else None,
            image=image,
            digest=assessment.digest,
        )
        for message, where in assessment.warnings()
    ]


async def hold_back_vulnerable(
    plan: Plan, pool: RegistryPool, gate: VulnGate
) -> tuple[Plan, list[Diagnostic]]:
    """The plan with every write of a failing image turned into a `vulnerable` verdict."""
    judged: dict[tuple[str, str, str], list[int]] = {}
    for index, verdict in enumerate(plan.verdicts):
        if verdict.action in JUDGED:
            group = plan.groups[verdict.group]
            judged.setdefault((group.source.name, group.image, group.digest), []).append(index)
    if not judged:
        return plan, []

    async def assess(indexes: list[int]) -> Assessment:
        group = plan.groups[plan.verdicts[indexes[0]].group]
        client, repository = pool.locate(group.source, group.image)
        return await gate.assess(group.source, client, repository, group.digest)

    keys = list(judged)
    assessments = await asyncio.gather(*(assess(judged[key]) for key in keys))
    verdicts: list[Verdict] = list(plan.verdicts)
    warnings: list[Diagnostic] = []
    for key, assessment in zip(keys, assessments, strict=True):
        warnings += assessment_warnings(assessment, key[1])
        if not assessment.held_back:
            continue
        worst = worst_finding(assessment)
        for index in judged[key]:
            # Nothing is written there, so nothing is signed there either.
            verdicts[index] = replace(
                verdicts[index],
                action=Action.VULNERABLE,
                error=f"{assessment.reason()}: held back",
                signature=None,
                attestation=None,
                vulnerability=worst,
            )
    return Plan(plan.groups, verdicts), sorted(set(warnings), key=Diagnostic.sort_key)
