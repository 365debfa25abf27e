"""`cip verify`'s one phase: read every destination the edges name, then judge each edge.

Sources are never read: verification asks what production holds, not what could be copied.
The reading is the planner's (`InventoryReader`), so it costs what a no-op plan costs: one
tag listing per destination repository on Google's registries, plus a HEAD per wanted tag
elsewhere. With a verify policy, each destination digest's signature is then read and
verified (`promote/sigcheck.py`), an index's children included.
"""

from __future__ import annotations

from collections.abc import Sequence

from cip.plan.edges import EdgeGroup
from cip.plan.verification import (
    SignatureCheck,
    SignatureGap,
    SignatureProblem,
    Verification,
    verify,
)
from cip.promote.inventory import InventoryReader, ProgressCallback
from cip.promote.sigcheck import check_signatures
from cip.promote.tally import Tally
from cip.registry.pool import RegistryPool
from cip.trust.signer import Verifier


async def verify_destinations(
    groups: Sequence[EdgeGroup],
    pool: RegistryPool,
    *,
    concurrency: int = 32,
    progress: ProgressCallback | None = None,
    tally: Tally | None = None,
    verifier: Verifier | None = None,
) -> Verification:
    """The edges judged; with a `verifier` (the verify policy), also every destination
    digest's signature, checked as `cip sigcheck` checks it, on the inventory already read.
    `tally`, when given, counts the destination repositories read."""
    reader = InventoryReader(pool, concurrency=concurrency, progress=progress, tally=tally)
    inventory = await reader.read(groups, read_sources=False)
    verification = verify(groups, inventory)
    if verifier is not None:
        result = await check_signatures(
            groups, pool, verifier, concurrency=concurrency, inventory=inventory
        )
        gaps = [
            SignatureGap(
                f.registry, f.image, f.digest, SignatureProblem(f.problem), f.detail, f.parent,
                f.where,
            )
            for f in (*result.findings, *result.errors)
        ]  # fmt: skip
        gaps.sort(key=lambda g: (g.image, g.digest, g.registry))
        verification.signatures = SignatureCheck(result.checked, gaps)
    return verification
