"""Runs a Plan: the only place where the plan meets the network.

Each verdict that writes (copy, add-tag) runs in isolation: its failure is recorded as data
and every other verdict still runs, so one bad image never blocks a release (upstream lets it
block everything). Verdicts run digest by digest, so the content kept for fanning out to
several mirrors is dropped as soon as that digest is done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from itertools import groupby

from cip.errors import CipError, RegistryError, Unreachable
from cip.plan.planner import Action, Plan, TagMove, Verdict
from cip.promote.copy import CopyStats, ImageCopier
from cip.promote.travel import AttachedTravel
from cip.registry.client import Registry
from cip.registry.pool import RegistryPool

ProgressCallback = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class EdgeResult:
    """What happened to one verdict's writes."""

    verdict: Verdict
    copied: bool = False
    tags_written: tuple[str, ...] = ()
    refused: tuple[TagMove, ...] = ()  # tags found on another digest at write time: none written
    error: str | None = None
    unreachable: Unreachable | None = None  # the failure was a host taking no connection


@dataclass
class EdgeTally:
    """How far a run got, kept up to date so an interrupt can say it at any moment.

    `done`: edges found in place by the plan, plus edges of writes that finished without a
    problem. `not_started`: edges whose work has not begun (every edge while planning; then the
    edges of writes not yet begun). Edges being written when the run stops, and failed ones,
    are in neither. None until the edges are known.
    """

    done: int | None = None
    not_started: int | None = None

    def planning(self, edges: int) -> None:
        self.done, self.not_started = 0, edges

    def planned(self, plan: Plan) -> None:
        counts = plan.edge_counts()
        self.done = counts.get(Action.PRESENT, 0)
        self.not_started = sum(_edges(v) for v in plan.writes())

    def started(self, verdict: Verdict) -> None:
        if self.not_started is not None:
            self.not_started -= _edges(verdict)

    def finished(self, verdict: Verdict) -> None:
        """A write that finished without a problem: its edges are done."""
        if self.done is not None:
            self.done += _edges(verdict)


def _edges(verdict: Verdict) -> int:
    """The edges a write verdict writes (its tags already present were counted as done)."""
    return sum(n for action, n in verdict.edge_actions().items() if action is not Action.PRESENT)


@dataclass
class Report:
    plan: Plan
    results: list[EdgeResult] = field(default_factory=list)
    stats: CopyStats = field(default_factory=CopyStats)
    travel: AttachedTravel | None = None

    @property
    def attached_merged(self) -> int:
        """`.sbom` tags of staging merged into destinations with their images."""
        return self.travel.merged if self.travel is not None else 0

    @property
    def failed(self) -> list[EdgeResult]:
        return [r for r in self.results if r.error is not None]

    def outcome_plan(self) -> Plan:
        """The plan with what actually happened folded in, for the same report renderers."""
        by_verdict = {id(r.verdict): r for r in self.results}
        verdicts: list[Verdict] = []
        for verdict in self.plan.verdicts:
            result = by_verdict.get(id(verdict))
            if result is None:
                verdicts.append(verdict)
            elif result.error is not None:
                verdicts.append(
                    replace(
                        verdict,
                        action=Action.FAILED,
                        error=result.error,
                        unreachable=result.unreachable,
                    )
                )
            elif result.refused:
                refused = {m.tag for m in result.refused}
                verdicts.append(
                    replace(
                        verdict,
                        action=Action.TAG_MOVE,
                        tags_to_add=tuple(t for t in verdict.tags_to_add if t not in refused),
                        tag_moves=verdict.tag_moves + result.refused,
                        copied_untagged=result.copied,
                    )
                )
            else:
                verdicts.append(verdict)
        return Plan(self.plan.groups, verdicts)


async def execute(
    plan: Plan,
    pool: RegistryPool,
    *,
    concurrency: int = 16,
    include_foreign_layers: bool = False,
    progress: ProgressCallback | None = None,
    tally: EdgeTally | None = None,
    copy_attached: bool = False,
) -> Report:
    """`copy_attached`: staging's SBOMs travel with every image written (see `travel.py`)."""
    copier = ImageCopier(include_foreign_layers=include_foreign_layers)
    travel = AttachedTravel(pool, copier) if copy_attached else None
    report = Report(plan, stats=copier.stats, travel=travel)
    limit = asyncio.Semaphore(concurrency)
    writes = plan.writes()

    async def run(verdict: Verdict) -> EdgeResult:
        async with limit:
            if tally is not None:
                tally.started(verdict)
            try:
                result = await _write(plan, verdict, pool, copier, travel)
            except RegistryError as error:
                return EdgeResult(verdict, error=error.message, unreachable=error.unreachable)
            except CipError as error:
                return EdgeResult(verdict, error=error.message)
            except OSError as error:  # an oci: layout folder that cannot be written
                return EdgeResult(verdict, error=f"{error.filename}: {error.strerror or error}")
            finally:
                if progress is not None:
                    progress(1)
            if tally is not None and result.error is None and not result.refused:
                tally.finished(verdict)
            return result

    # One batch per source image digest: its destinations run together, then its cached
    # content is dropped. Batches overlap up to the concurrency limit.
    def batch_key(v: Verdict) -> tuple[str, str, str]:
        group = plan.groups[v.group]
        return (group.source.name, group.image, group.digest)

    batches = [list(items) for _, items in groupby(sorted(writes, key=batch_key), key=batch_key)]
    window = asyncio.Semaphore(max(1, concurrency // 2))

    async def run_batch(batch: list[Verdict]) -> list[EdgeResult]:
        async with window:
            results = await asyncio.gather(*(run(v) for v in batch))
            copier.forget_cached_content()
            return list(results)

    for results in await asyncio.gather(*(run_batch(b) for b in batches)):
        report.results.extend(results)
    return report


async def _write(
    plan: Plan,
    verdict: Verdict,
    pool: RegistryPool,
    copier: ImageCopier,
    travel: AttachedTravel | None,
) -> EdgeResult:
    group = plan.groups[verdict.group]
    dst, dst_repo = pool.locate(verdict.destination, group.image)
    if verdict.action is Action.COPY:
        src, src_repo = pool.locate(group.source, group.image)
        if verdict.fresh:
            copier.mark_fresh(dst, dst_repo)
        manifest = await copier.copy(src, src_repo, dst, dst_repo, group.digest, known_absent=True)
        copied = True
    else:
        manifest = await copier.source_manifest(dst, dst_repo, group.digest)
        copied = False
    if travel is not None:  # before any tag points at the image
        try:
            await travel.carry(group, dst, dst_repo, manifest)
        except CipError as error:
            raise RegistryError(
                f"staging's SBOM could not be merged: {error.message}",
                registry=verdict.destination.name,
                image=group.image,
                digest=group.digest,
            ) from None
    # Tags are re-checked right before writing (another run may have written one since the
    # plan): with several tags, one listing says which are still absent, and only tags that
    # exist now need a HEAD to compare digests. If one now points at another digest, no tag is
    # written: the digest is there (it had to be copied first) but no release points at it.
    absent: set[str] = set()
    if len(verdict.tags_to_add) > 1:
        absent = set(verdict.tags_to_add) - await _tags_now(dst, dst_repo)
    to_write: list[str] = []
    refused: list[TagMove] = []
    for tag in verdict.tags_to_add:
        current = None if tag in absent else await dst.head_manifest(dst_repo, tag)
        if current is None:
            to_write.append(tag)
        elif current.digest != manifest.digest:
            refused.append(TagMove(tag, current.digest))
    if refused:
        return EdgeResult(verdict, copied, (), tuple(refused))
    written = [
        tag for tag in to_write if await copier.tag(dst, dst_repo, tag, manifest, known_absent=True)
    ]
    return EdgeResult(verdict, copied, tuple(written))


async def _tags_now(dst: Registry, repository: str) -> set[str]:
    try:
        return set((await dst.list_tags(repository)).tags)
    except RegistryError as error:
        if error.status == 404:
            return set()  # Distribution 2.8.2: NAME_UNKNOWN until the repository's first tag
        raise
