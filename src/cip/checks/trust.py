"""`signature` and `provenance`: staging's signatures and build provenance of what the change
would promote, verified as `cip run` verifies them before it copies.

Judged are the digests a promotion would write (new to a destination repository, or given a new
tag there), each source digest once, against the policy of the verification flags
(`--verify-key`, the keyless identity policy, `--require-signature`, `--require-provenance`,
`--provenance-builder-id`, `--provenance-source-uri`). A digest `cip run` would hold back is an
error at its manifest line, with the same reason; a pull request that passes here is not held
back at promotion for its signatures or provenance. Without a policy both checks are reported
skipped, never passed. Both checks share one read of staging per digest (`CheckContext`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from cip.checks.context import CheckContext
from cip.checks.findings import Check, CheckSkipped, Finding
from cip.checks.staging import unique_sources
from cip.plan.edges import EdgeGroup
from cip.trust.judge import Judgement

NO_POLICY = "not asked for: no --verify-key or --certificate-identity policy"


def _check(kind: str) -> Callable[[CheckContext], Awaitable[list[Finding]]]:
    async def run(context: CheckContext) -> list[Finding]:
        policy = context.options.staging
        if policy is None:
            raise CheckSkipped(NO_POLICY)
        required = policy.require_signature if kind == "signature" else policy.require_provenance
        groups = unique_sources(context.change.written)
        judged = await asyncio.gather(*(context.staging_judgement(g) for g in groups))
        found: list[Finding] = []
        for group, result in zip(groups, judged, strict=True):
            reason = _problem(result, kind, required)
            if reason is not None:
                found.append(_finding(kind, group, reason))
        return found

    return run


def _problem(result: Judgement | str, kind: str, required: bool) -> str | None:
    if isinstance(result, str):
        return result  # staging could not be read
    outcome = result.signature if kind == "signature" else result.provenance
    if outcome.state == "invalid" or (outcome.state == "missing" and required):
        return outcome.reason
    return None


def _finding(kind: str, group: EdgeGroup, reason: str) -> Finding:
    where = f"{group.source.name}/{group.image}"
    return Finding.at(
        kind,
        "error",
        f"{group.image} {group.digest} in {where}: {reason}",
        group.position,
        image=group.image,
        digest=group.digest,
        registry=group.source.name,
    )


SIGNATURE = Check(
    "signature",
    "every added digest is signed as the policy requires",
    _check("signature"),
)
PROVENANCE = Check(
    "provenance",
    "every added digest has provenance the policy accepts",
    _check("provenance"),
)
