"""`vulnerabilities`: no digest the change adds or re-tags has a vulnerability at or above
`--vuln-severity-threshold` (fixable ones only, unless `--vuln-include-unfixed`).

Judged are the digests a promotion would write: new to a destination repository, or given a
tag it did not have there, as `cip run` judges every copy and new tag; a line changed
otherwise (a tag removed) publishes nothing and is not judged.

Findings come from the sources the flags name (report files, a trivy scan, signed
attestations), judged by the same gate `cip run` applies when it promotes, so a pull request
that passes here is not held back at promotion for the same findings. Each failing image is one
error at its manifest line, naming its worst finding; sources that were not used and allowlist
entries that expired are warnings (an expired entry at its own line in the allowlist).
"""

from __future__ import annotations

import asyncio

from cip.checks.context import CheckContext
from cip.checks.findings import Check, CheckSkipped, Finding
from cip.checks.staging import unique_sources
from cip.plan.edges import EdgeGroup
from cip.vuln.gate import VulnGate

ID = "vulnerabilities"
OFF = "not asked for: no --vuln-severity-threshold"
OFF_ZERO = "turned off: --vuln-severity-threshold is 0"


async def _judge(context: CheckContext, gate: VulnGate, group: EdgeGroup) -> list[Finding]:
    client, repository = context.pool.locate(group.source, group.image)
    assessment = await gate.assess(group.source, client, repository, group.digest)
    name = f"{group.image} {group.digest}"
    about = {"image": group.image, "digest": group.digest}
    found: list[Finding] = []
    if assessment.held_back:
        message = f"{name} fails: {assessment.reason()}"
        found.append(Finding.at(ID, "error", message, group.position, **about))
    for message, where in assessment.warnings():
        found.append(
            Finding.at(ID, "warning", f"{message} (image {name})", where or group.position, **about)
        )
    return found


async def run(context: CheckContext) -> list[Finding]:
    gate = context.options.vuln_gate
    if gate is None:
        raise CheckSkipped(OFF)
    if not gate.policy.active:
        raise CheckSkipped(OFF_ZERO)
    groups = unique_sources(context.change.written)
    found = await asyncio.gather(*(_judge(context, gate, group) for group in groups))
    return [finding for findings in found for finding in findings]


CHECK = Check(
    ID,
    "no added or re-tagged digest has a vulnerability at or above --vuln-severity-threshold",
    run,
)
