"""`cip verify`'s one phase: read every destination the edges name, then judge each edge.

Sources are never read: verification asks what production holds, not what could be copied.
The reading is the planner's (`InventoryReader`), so it costs what a no-op plan costs: one
tag listing per destination repository on Google's registries, plus a HEAD per wanted tag
elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence

from cip.plan.edges import EdgeGroup
from cip.plan.verification import Verification, verify
from cip.promote.inventory import InventoryReader, ProgressCallback
from cip.promote.tally import Tally
from cip.registry.pool import RegistryPool


async def verify_destinations(
    groups: Sequence[EdgeGroup],
    pool: RegistryPool,
    *,
    concurrency: int = 32,
    progress: ProgressCallback | None = None,
    tally: Tally | None = None,
) -> Verification:
    """`tally`, when given, counts the destination repositories read."""
    reader = InventoryReader(pool, concurrency=concurrency, progress=progress, tally=tally)
    inventory = await reader.read(groups, read_sources=False)
    return verify(groups, inventory)
