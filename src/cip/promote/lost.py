"""Why a digest is lost, when the manifests themselves can tell: it is a child of a listed index.

Manifests often list an index's children under image names of their own (`logger-amd` beside
`logger`, promo-tools issue 402). A registry keeps a child in the index's repository, so the
child is in neither the source nor a destination repository of its own name: lost. Saying
"child of logger@sha256:… listed at images.yaml:3" turns a mystery into a one-line fix.

Costs nothing unless something is lost: then each index of the same source registry that the
plan already saw (its media type came with a HEAD or listing) is read once.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from cip.errors import RegistryError
from cip.model.inventory import Inventory
from cip.model.refs import Registry as RegistryName
from cip.oci.media import INDEX_TYPES
from cip.plan.edges import EdgeGroup
from cip.plan.planner import Action, ParentIndex, Plan
from cip.registry.pool import RegistryPool


def _where_index(group: EdgeGroup, inventory: Inventory) -> RegistryName | None:
    """A registry holding `group`'s digest as an index (source first), or None."""
    for registry in (group.source, *group.destinations):
        facts = inventory.get(registry.name, group.image)
        if facts is not None and facts.media_types.get(group.digest) in INDEX_TYPES:
            return registry
    return None


async def explain_lost(plan: Plan, inventory: Inventory, pool: RegistryPool) -> Plan:
    """The plan with `parent` set on lost verdicts whose digest a listed index names."""
    lost = {plan.groups[v.group].digest for v in plan.verdicts if v.action is Action.LOST}
    if not lost:
        return plan
    sources = {plan.groups[v.group].source.name for v in plan.verdicts if v.action is Action.LOST}
    candidates: dict[tuple[str, str], tuple[EdgeGroup, RegistryName]] = {}
    for group in plan.groups:
        if group.source.name in sources and (group.image, group.digest) not in candidates:
            holder = _where_index(group, inventory)
            if holder is not None:
                candidates[(group.image, group.digest)] = (group, holder)
    found = await asyncio.gather(
        *(_children(pool, holder, group) for group, holder in candidates.values())
    )
    parents: dict[tuple[str, str], ParentIndex] = {}  # (source, child digest) -> index
    for (group, _), children in zip(candidates.values(), found, strict=True):
        for child in children & lost:
            parents.setdefault(
                (group.source.name, child), ParentIndex(group.image, group.digest, group.position)
            )
    verdicts = []
    for verdict in plan.verdicts:
        group = plan.groups[verdict.group]
        parent = parents.get((group.source.name, group.digest))
        if verdict.action is Action.LOST and parent is not None:
            verdict = replace(verdict, parent=parent)
        verdicts.append(verdict)
    return Plan(plan.groups, verdicts)


async def _children(pool: RegistryPool, holder: RegistryName, group: EdgeGroup) -> set[str]:
    client, repository = pool.locate(holder, group.image)
    try:
        manifest = await client.get_manifest(repository, group.digest)
        return {child.digest for child in manifest.parse().children}
    except (RegistryError, OSError):
        return set()  # only an explanation: the lost verdict stands without it
