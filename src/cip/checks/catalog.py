"""Every check, chosen by `--checks`/`--skip-checks`, run concurrently into one report."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from cip.checks import (
    manifest,
    overlap,
    removal,
    size,
    staging,
    tag_move,
    trust,
    vulnerabilities,
)
from cip.checks.change import Change
from cip.checks.context import CheckContext
from cip.checks.findings import Check, CheckResult, CheckSkipped, Finding
from cip.errors import ExitCode, UsageError
from cip.promote.tally import Tally

CHECKS: tuple[Check, ...] = (
    manifest.CHECK,
    overlap.CHECK,
    tag_move.CHECK,
    removal.CHECK,
    staging.CHECK,
    size.CHECK,
    vulnerabilities.CHECK,
    trust.SIGNATURE,
    trust.PROVENANCE,
)
ALWAYS = manifest.ID  # nothing else can be judged without manifests that load
NEEDS_MANIFESTS = "skipped: the head manifests do not load (see the manifest check)"


def choose(only: Sequence[str], skip: Sequence[str]) -> list[Check]:
    """The checks to run, in catalog order; an unknown id is a usage error naming the ids."""
    known = {check.id for check in CHECKS}
    unknown = [name for name in (*only, *skip) if name not in known]
    if unknown:
        raise UsageError(
            f"unknown check {', '.join(repr(u) for u in unknown)}; "
            f"checks are {', '.join(c.id for c in CHECKS)} (cip check --list)"
        )
    if ALWAYS in skip:
        raise UsageError(f"--skip-checks {ALWAYS}: it always runs; every other check needs it")
    wanted = set(only or known) - set(skip) | {ALWAYS}
    return [check for check in CHECKS if check.id in wanted]


@dataclass
class CheckReport:
    """The results of one `cip check`, for the renderers in `report/`."""

    change: Change
    results: list[CheckResult]
    requests: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def findings(self) -> list[Finding]:
        found = [f for result in self.results for f in result.findings]
        return sorted(found, key=Finding.sort_key)

    @property
    def failed(self) -> bool:
        return any(result.status == "fail" for result in self.results)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.FAILED if self.failed else ExitCode.OK


async def _one(check: Check, context: CheckContext) -> CheckResult:
    if check.id != ALWAYS and not context.change.loads:
        return CheckResult.skipped(check, NEEDS_MANIFESTS)
    try:
        return CheckResult.judged(check, await check.run(context))
    except CheckSkipped as skipped:
        return CheckResult.skipped(check, skipped.note)


async def run_checks(
    context: CheckContext, checks: Sequence[Check], tally: Tally | None = None
) -> list[CheckResult]:
    """Every chosen check at once; registry reads they share are made once (CheckContext).
    `tally`, when given, counts the checks done."""
    tally = tally if tally is not None else Tally("checks")
    tally.expect(len(checks))

    async def counted(check: Check) -> CheckResult:
        tally.started()
        result = await _one(check, context)
        tally.finished()
        return result

    return list(await asyncio.gather(*(counted(check) for check in checks)))
