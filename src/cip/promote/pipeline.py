"""The phases of a run, as upstream names them: setup, plan, provenance, validate, promote,
sign, attest.

This module holds the offline part: loading and validating manifests and building edges. It
raises before any registry is read when a manifest is invalid, because such errors belong to
the pull request that introduced them, not to a half-done promotion.
"""

from __future__ import annotations

import difflib
import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from cip.errors import Diagnostic, ManifestError, UsageError
from cip.manifests import git_diff
from cip.manifests.load import load_all
from cip.model.manifest import PromoterManifest
from cip.model.refs import is_attached_tag
from cip.plan.conflicts import find_overlaps
from cip.plan.edges import EdgeGroup, EdgeSummary, build_edges, summarize
from cip.plan.selection import select_changed, select_images
from cip.plan.shards import Shard, select_shard

if TYPE_CHECKING:
    # The registry side is imported when a run reaches it: validating manifests (the offline
    # part, `--parse-only`) should not pay for the HTTP stack's import.
    from cip.plan.planner import Plan, SigningPolicy
    from cip.promote.executor import EdgeTally, Report
    from cip.promote.inventory import ProgressCallback
    from cip.promote.signing import SigningSetup
    from cip.registry.pool import RegistryPool
    from cip.trust.judge import StagingPolicy
    from cip.vuln.gate import VulnGate


class Phase(Enum):
    SETUP = "setup"
    PLAN = "plan"
    PROVENANCE = "provenance"
    VALIDATE = "validate"
    PROMOTE = "promote"
    SIGN = "sign"
    ATTEST = "attest"


@dataclass(frozen=True)
class ValidatedManifests:
    manifests: list[PromoterManifest]
    groups: list[EdgeGroup]
    summary: EdgeSummary
    warnings: list[Diagnostic]


def load_and_validate(plain_files: list[str], thin_dirs: list[str]) -> ValidatedManifests:
    """Every manifest loaded and checked; raises ManifestError listing every problem."""
    result = load_all(plain_files, thin_dirs)
    diagnostics = list(result.diagnostics)
    if not result.errors:
        diagnostics.extend(find_overlaps(result.manifests))
    if any(d.severity == "error" for d in diagnostics):
        raise ManifestError.from_diagnostics(diagnostics)
    groups = build_edges(result.manifests)
    warnings = [*result.warnings, *_attached_tag_warnings(result.manifests)]
    return ValidatedManifests(
        manifests=result.manifests,
        groups=groups,
        summary=summarize(result.manifests, groups),
        warnings=sorted(warnings, key=Diagnostic.sort_key),
    )


def _attached_tag_warnings(manifests: list[PromoterManifest]) -> list[Diagnostic]:
    """Tags such as `sha256-<hex>.sig` in a manifest are not promoted (build_edges drops them):
    they are merged by signing. Say so where they are written."""
    found: list[Diagnostic] = []
    for manifest in manifests:
        for image in manifest.images:
            for digest, tags in image.dmap.items():
                for tag in tags:
                    if is_attached_tag(tag):
                        where = image.digest_positions[digest]
                        found.append(
                            Diagnostic(
                                f"tag {tag} names attached content (signature, attestation, "
                                "SBOM or referrers index), not an image: it is not promoted",
                                severity="warning",
                                file=where.file,
                                line=where.line,
                                column=where.column,
                                image=image.name,
                                digest=digest,
                            )
                        )
    return found


@dataclass(frozen=True)
class Selection:
    """Narrowing of a run: a git base to diff against, image names, and/or one shard."""

    diff_base: str | None = None
    diff_since: str | None = None
    prow_diff: bool = False
    images: tuple[str, ...] = ()
    shard: Shard | None = None

    @property
    def by_diff(self) -> bool:
        return self.diff_base is not None or self.diff_since is not None or self.prow_diff


def select(validated: ValidatedManifests, selection: Selection) -> list[EdgeGroup]:
    """The edge groups a run works on; a git diff that changed nothing selects nothing.

    An --image that names no image of the manifests is a usage error (a typo would otherwise
    select nothing and report success); one the diff left out is not.
    """
    if selection.images:
        _check_image_names(validated, selection.images)
    groups: list[EdgeGroup] = list(validated.groups)
    if selection.by_diff:
        files = sorted(
            {m.manifest_file for m in validated.manifests}
            | {m.images_file for m in validated.manifests}
        )
        if not files:
            return []
        root = git_diff.repository_root(files[0])
        if selection.diff_base is not None:
            ref = selection.diff_base
        elif selection.diff_since is not None:
            ref = git_diff.ref_since(root, selection.diff_since)
        else:
            ref = git_diff.prow_ref(os.environ)
        changed = git_diff.changed_lines(root, ref, files)
        groups = select_changed(validated.manifests, groups, changed)
    if selection.images:
        groups = select_images(groups, selection.images)
    if selection.shard is not None:
        groups = select_shard(validated.groups, groups, selection.shard)
    return groups


def _check_image_names(validated: ValidatedManifests, wanted: tuple[str, ...]) -> None:
    known = {group.image for group in validated.groups}
    unknown = [name for name in dict.fromkeys(wanted) if name not in known]
    if not unknown:
        return
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    noun = "image" if len(unknown) == 1 else "images"
    raise UsageError(f"--image: no {noun} named {', '.join(hints)} in the manifests")


async def plan_against_registries(
    groups: list[EdgeGroup],
    pool: RegistryPool,
    *,
    concurrency: int = 32,
    progress: ProgressCallback | None = None,
    signing: SigningPolicy | None = None,
) -> Plan:
    """Phase `plan`: read what the edges need from the registries, then judge every edge."""
    from cip.plan.planner import plan
    from cip.promote.inventory import InventoryReader
    from cip.promote.lost import explain_lost

    reader = InventoryReader(pool, concurrency=concurrency, progress=progress)
    inventory = await reader.read(groups)
    return await explain_lost(plan(groups, inventory, signing), inventory, pool)


PhaseListener = Callable[[Phase, str], None]  # (phase, one-line summary) when a phase ends
# (phase, unit) -> a context manager whose value is called with the number of units finished
ProgressFactory = Callable[[str, str], AbstractContextManager["ProgressCallback"]]


def _progress(
    factory: ProgressFactory | None, phase: str, unit: str
) -> AbstractContextManager[ProgressCallback | None]:
    return factory(phase, unit) if factory is not None else nullcontext()


@dataclass
class RunOutcome:
    plan: Plan  # with --confirm: the plan with what actually happened folded in
    report: Report | None  # None for a dry run
    phases: list[Phase]
    requests: dict[str, dict[str, int]]  # host -> "METHOD status" -> count, every attempt
    warnings: list[Diagnostic] = field(default_factory=list)  # from the validate phase


def request_table(pool: RegistryPool) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for (host, method, status), count in sorted(pool.counter.counts.items()):
        table.setdefault(host, {})[f"{method} {status or 'no answer'}"] = count
    return table


async def run_phases(
    groups: list[EdgeGroup],
    pool: RegistryPool,
    *,
    confirm: bool,
    concurrency: int = 32,
    include_foreign_layers: bool = False,
    max_image_size: int | None = None,
    on_phase: PhaseListener | None = None,
    progress: ProgressFactory | None = None,
    signing: SigningSetup | None = None,
    vuln_gate: VulnGate | None = None,
    tally: EdgeTally | None = None,
    staging: StagingPolicy | None = None,
    copy_attached: bool = True,
) -> RunOutcome:
    """Phases in upstream's order; a dry run stops after validate.

    `staging` verifies staging's signatures and provenance (phases provenance and validate:
    one read serves both); `max_image_size` (MiB) holds back copies of larger images in the
    validate phase, and `vuln_gate` writes of images it fails. `copy_attached`: what staging
    attaches to an image travels with it.

    `tally`, when given, is kept up to date with how far the run got (see `EdgeTally`).
    """
    from cip.plan.planner import Action
    from cip.promote.executor import EdgeTally, execute
    from cip.promote.imagesize import hold_back_large_images
    from cip.promote.signing import fold_signing, sign_phase
    from cip.promote.validate import verify_staging
    from cip.promote.vulngate import hold_back_vulnerable

    done: list[Phase] = []

    def finished(phase: Phase, summary: str) -> None:
        done.append(phase)
        if on_phase is not None:
            on_phase(phase, summary)

    finished(Phase.SETUP, f"{len(groups):,} image digests selected")
    tally = tally if tally is not None else EdgeTally()
    tally.planning(sum(group.edge_count for group in groups))
    start = time.monotonic()
    before = pool.counter.total
    with _progress(progress, "plan", "registry requests") as advance:
        planned = await plan_against_registries(
            groups,
            pool,
            concurrency=concurrency,
            progress=advance,
            signing=signing.policy if signing is not None else None,
        )
    finished(
        Phase.PLAN,
        f"{len(planned.verdicts):,} destination verdicts{_signature_steps(planned)}"
        f"{_requests(pool.counter.total - before)} in {time.monotonic() - start:.1f}s",
    )
    validated = "no signature policy configured"
    if staging is None:
        finished(Phase.PROVENANCE, "not checked (no verification policy configured)")
    else:
        start, before = time.monotonic(), pool.counter.total
        planned, found = await verify_staging(planned, pool, staging, concurrency=concurrency)
        took = f"{_requests(pool.counter.total - before)} in {time.monotonic() - start:.1f}s"
        finished(Phase.PROVENANCE, f"provenance of {found.line('provenance')}{took}")
        validated = f"signatures of {found.line('signature')}"
    if max_image_size is not None:
        planned = await hold_back_large_images(
            planned, pool, max_image_size, concurrency=concurrency
        )
        held = len({v.group for v in planned.verdicts if v.action is Action.TOO_LARGE})
        validated += f"; {held:,} image digests above --max-image-size held back"
    warnings: list[Diagnostic] = []
    if vuln_gate is not None:
        planned, warnings = await hold_back_vulnerable(planned, pool, vuln_gate)
        held = len({v.group for v in planned.verdicts if v.action is Action.VULNERABLE})
        validated += f"; {held:,} image digests held back by the vulnerability gate"
    tally.planned(planned)
    finished(Phase.VALIDATE, validated)
    if not confirm:
        return RunOutcome(planned, None, done, request_table(pool), warnings)
    start, before = time.monotonic(), pool.counter.total
    with _progress(progress, "promote", "destinations done") as advance:
        report = await execute(
            planned,
            pool,
            concurrency=concurrency,
            include_foreign_layers=include_foreign_layers,
            progress=advance,
            tally=tally,
            copy_attached=copy_attached,
        )
    stats = report.stats
    finished(
        Phase.PROMOTE,
        f"{stats.manifests_written:,} manifests, {stats.tags_written:,} tags, "
        f"{stats.blobs_streamed:,} blobs streamed ({stats.bytes_streamed / 2**20:,.1f} MiB), "
        f"{stats.blobs_mounted:,} mounted, {stats.blobs_present:,} already there"
        f"{_foreign(stats.foreign_layers_skipped)}{_attached(report.attached_merged)}; "
        f"{len(report.failed):,} failed{_requests(pool.counter.total - before)} "
        f"in {time.monotonic() - start:.1f}s",
    )
    outcome = report.outcome_plan()
    if signing is None:
        finished(Phase.SIGN, "signing is not configured")
    else:
        start, before = time.monotonic(), pool.counter.total
        with _progress(progress, "sign", "digests done") as advance:
            results = await sign_phase(outcome, pool, signing, progress=advance)
        outcome = fold_signing(outcome, results)
        made = signing.service.stats
        failures = sum(1 for r in results if r.error is not None and not r.attestation)
        took = f"{_requests(pool.counter.total - before)} in {time.monotonic() - start:.1f}s"
        finished(
            Phase.SIGN,
            f"{made.signed:,} signatures made, {made.replicated:,} replicated, "
            f"{failures:,} failed{took}",
        )
    if signing is None or signing.attestations is None:
        finished(Phase.ATTEST, "attestation is not configured (it needs a signer)")
    else:
        attested = signing.attestations.stats
        failures = sum(1 for r in results if r.error is not None and r.attestation)
        finished(
            Phase.ATTEST,
            f"{attested.made:,} promotion attestations made, {attested.replicated:,} "
            f"replicated, {failures:,} failed",
        )
    return RunOutcome(outcome, report, done, request_table(pool), warnings)


def _signature_steps(planned: Plan) -> str:
    from cip.plan.planner import SignatureStep

    counts = planned.signature_counts()
    if not counts:
        return ""
    return "; " + ", ".join(f"{counts[step]:,} {step}" for step in SignatureStep if counts[step])


def _requests(count: int) -> str:
    # Local OCI layouts make no requests; say nothing rather than "0 requests".
    return f"; {count:,} registry requests" if count else ""


def _attached(merged: int) -> str:
    return f", {merged:,} SBOMs of staging merged" if merged else ""


def _foreign(skipped: int) -> str:
    # Non-distributable layers are referenced, not copied, unless --include-foreign-layers.
    return f", {skipped:,} foreign layers not copied" if skipped else ""
