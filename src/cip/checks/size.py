"""`size`: an added image's compressed size is at most `--max-image-size` MiB.

The size is read from the image's manifests in the source registry (config and layers of
every platform, each blob once); `cip run --max-image-size` applies the same rule when it
promotes. An image whose manifests cannot be read is the `staging` check's finding.
"""

from __future__ import annotations

import asyncio

from cip.checks.context import CheckContext
from cip.checks.findings import Check, Finding
from cip.checks.staging import unique_sources
from cip.plan.edges import EdgeGroup
from cip.promote.imagesize import MIB, too_large_message

ID = "size"


async def _judge(context: CheckContext, group: EdgeGroup) -> list[Finding]:
    facts = await context.source_image(group)
    limit = context.options.max_image_size
    if facts.size is None or facts.size <= limit * MIB:
        return []
    message = f"{group.image} {group.digest} is {too_large_message(facts, limit)}"
    return [
        Finding.at(ID, "error", message, group.position, image=group.image, digest=group.digest)
    ]


async def run(context: CheckContext) -> list[Finding]:
    groups = unique_sources(context.change.added)
    found = await asyncio.gather(*(_judge(context, g) for g in groups))
    return [finding for findings in found for finding in findings]


CHECK = Check(ID, "every added image is at most --max-image-size MiB compressed", run)
