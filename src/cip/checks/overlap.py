"""`overlap`: no destination `registry/image:tag` is mapped to two digests."""

from __future__ import annotations

from cip.checks.context import CheckContext
from cip.checks.findings import Check, Finding
from cip.plan.conflicts import find_overlaps

ID = "overlap"


async def run(context: CheckContext) -> list[Finding]:
    return [Finding.from_diagnostic(ID, d) for d in find_overlaps(context.change.loaded.manifests)]


CHECK = Check(ID, "no destination tag is mapped to two digests", run)
