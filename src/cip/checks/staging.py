"""`staging`: every added digest exists in the source registry, with every child of an index.

A promotion of a digest staging does not hold would report it lost after the merge; a
missing child would fail the index copy. Both belong to the pull request, so they are found
here, before a reviewer approves it.
"""

from __future__ import annotations

import asyncio

from cip.checks.context import CheckContext
from cip.checks.findings import Check, Finding
from cip.plan.edges import EdgeGroup
from cip.promote.imagesize import describe_platform

ID = "staging"


def unique_sources(groups: list[EdgeGroup]) -> list[EdgeGroup]:
    """One group per (source registry, image, digest): several manifests may add the same."""
    seen: dict[tuple[str, str, str], EdgeGroup] = {}
    for group in groups:
        seen.setdefault((group.source.name, group.image, group.digest), group)
    return list(seen.values())


async def _judge(context: CheckContext, group: EdgeGroup) -> list[Finding]:
    facts = await context.source_image(group)
    repository = f"{group.source.name}/{group.image}"
    context_args = {"image": group.image, "digest": group.digest, "registry": group.source.name}
    if facts.error is not None:
        message = f"cannot read {repository}: {facts.error}"
        return [Finding.at(ID, "error", message, group.position, **context_args)]
    if not facts.present:
        message = f"{group.digest} is not in the source repository {repository}"
        return [Finding.at(ID, "error", message, group.position, **context_args)]
    return [
        Finding.at(
            ID,
            "error",
            f"index {group.digest} lists {child.digest} ({describe_platform(child)}), which "
            f"{repository} does not hold",
            group.position,
            **context_args,
        )
        for child in facts.missing_children
    ]


async def run(context: CheckContext) -> list[Finding]:
    groups = unique_sources(context.change.added)
    found = await asyncio.gather(*(_judge(context, g) for g in groups))
    return [finding for findings in found for finding in findings]


CHECK = Check(ID, "every added digest, and every child of an index, is in staging", run)
