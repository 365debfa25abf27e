"""Text renderings for people: the parse summary and the plan report (problems first)."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from typing import TYPE_CHECKING

from cip.errors import Unreachable
from cip.model.refs import Registry, short_digest
from cip.plan.edges import EdgeSummary
from cip.plan.planner import HELD_BACK_BY_STAGING, Action, Plan, Verdict
from cip.report.rows import (
    OPTIONAL,
    ORDER,
    DigestRow,
    attestation_totals,
    digest_rows,
    promotion_result,
    signature_totals,
)

if TYPE_CHECKING:
    from cip.promote.copy import CopyStats  # annotations only: no event loop for --parse-only

SUMMARY_LABELS = (
    ("manifests", "Manifests"),
    ("image_entries", "Image entries"),
    ("unique_digests", "Unique digests"),
    ("tag_entries", "Tag entries"),
    ("destination_registries", "Destination registries"),
    ("destination_repositories", "Destination repositories"),
    ("edges", "Promotion edges"),
)


def parse_summary_text(summary: EdgeSummary, warnings: int) -> str:
    values = asdict(summary)
    width = max(len(label) for _, label in SUMMARY_LABELS) + 1
    lines = [f"{label + ':':<{width}} {values[key]:>9,}" for key, label in SUMMARY_LABELS]
    lines.append(f"{'Warnings:':<{width}} {warnings:>9,}")
    return "\n".join(lines)


def _unreachable_lines(plan: Plan) -> list[str]:
    """One line per host that took no connection: its edges all fail for the same reason, and
    one line per edge would bury every other problem (the JSON keeps each edge's error)."""
    down: Counter[Unreachable] = Counter(
        v.unreachable for v in plan.verdicts if v.action is Action.FAILED and v.unreachable
    )
    return [
        f"  failed    {where.host} unreachable ({where.reason}): {count:,} "
        f"destination{'s' if count != 1 else ''} not promoted"
        for where, count in sorted(down.items(), key=lambda item: item[0].host)
    ]


def _problem_lines(plan: Plan, rows: list[DigestRow]) -> list[str]:
    lines = _unreachable_lines(plan)
    for row in rows:
        ref = f"{row.name}@{row.digest}"
        lost = row.by_action.get(Action.LOST, [])
        if lost:
            source = _repository(plan.groups[lost[0].group].source, row.image)
            lines.append(
                f"  lost      {ref} ({row.where}): in neither {source} nor "
                f"{_destinations(lost, row.image)}{_parent(lost)}"
            )
        for verdict in row.by_action.get(Action.TAG_MOVE, []):
            repository = f"{verdict.destination.name}/{row.image}"
            for move in verdict.tag_moves:
                lines.append(
                    f"  tag move  {repository}:{move.tag} is {move.current}; the manifest wants "
                    f"{row.digest} ({row.where}): refused, tags never move; {_held(verdict)}"
                )
        for verdict in row.by_action.get(Action.FAILED, []):
            if verdict.unreachable is not None:
                continue  # said once for its host
            lines.append(
                f"  failed    {ref} at {_repository(verdict.destination, row.image)}: "
                f"{verdict.error} ({row.where})"
            )
        large = row.by_action.get(Action.TOO_LARGE, [])
        if large:
            lines.append(f"  too large {ref} ({row.where}): {large[0].error}")
        vulnerable = row.by_action.get(Action.VULNERABLE, [])
        if vulnerable:
            lines.append(f"  vulnerable {ref} ({row.where}): {vulnerable[0].error}")
        for action in HELD_BACK_BY_STAGING:
            held = row.by_action.get(action, [])
            if held:
                source = _repository(plan.groups[held[0].group].source, row.image)
                lines.append(f"  {action} {ref} ({row.where}) in {source}: {held[0].error}")
    return lines


def _held(verdict: Verdict) -> str:
    """What a refused tag move kept from being written to that repository."""
    others = f" (held back: {', '.join(verdict.tags_to_add)})" if verdict.tags_to_add else ""
    if verdict.copied_untagged:
        return f"the tag appeared while the digest was copied: no tag written{others}"
    return f"nothing written there for this digest{others}"


def _repository(registry: Registry, image: str) -> str:
    """`host/path/image` as users pull it (`oci:DIR` layouts: the folder, then the image)."""
    return f"{registry.name}/{image}"


def _destinations(verdicts: list[Verdict], image: str) -> str:
    names = sorted({_repository(v.destination, image) for v in verdicts})
    if len(names) <= 3:
        return ", ".join(names)
    return f"{len(names)} destination repositories ({names[0]}, …)"


def _parent(verdicts: list[Verdict]) -> str:
    """Why the digest is lost, when an index of the manifests lists it as a child."""
    parent = next((v.parent for v in verdicts if v.parent is not None), None)
    if parent is None:
        return ""
    where = f"{parent.position.file}:{parent.position.line}"
    return f"; child of {parent.image}@sha256:{short_digest(parent.digest)}… listed at {where}"


def plan_text(plan: Plan, *, dry_run: bool, stats: CopyStats | None = None) -> str:
    """The report of a dry run, or of an executed run with the `stats` of its writes."""
    rows = digest_rows(plan)
    out: list[str] = []
    problems = _problem_lines(plan, rows)
    if problems:
        out.append(f"Problems ({len(problems)}):")
        out.extend(problems)
        out.append("")
    if rows:
        out.append("Images:")
        width = max(len(r.name) for r in rows)
        for row in rows:
            actions = ", ".join(
                [
                    f"{action} {len({v.destination.name for v in row.by_action[action]})}"
                    for action in ORDER
                    if action in row.by_action
                ]
                + [f"{step} {count}" for step, count in sorted(row.signatures.items())]
                + [f"{step} {count}" for step, count in sorted(row.attestations.items())]
            )
            tags = ",".join(sorted(row.tags)) or "(no tag)"
            out.append(f"  {row.name:<{width}}  {short_digest(row.digest)}  {tags}  {actions}")
        out.append("")
    counts = plan.edge_counts()
    totals = ", ".join(
        f"{action} {counts.get(action, 0):,}"
        for action in ORDER
        # held-back verdicts only show when a gate (--max-image-size, the vulnerability
        # threshold, staging's verification) held something back
        if action not in OPTIONAL or counts.get(action)
    )
    written = None if dry_run or stats is None else promotion_result(plan, stats)
    mode = written or "dry run: nothing written"
    out.append(f"Edges {sum(counts.values()):,}: {totals} ({mode})")
    signatures = signature_totals(plan)
    if any(signatures.values()):
        steps = ", ".join(f"{step} {count:,}" for step, count in signatures.items())
        out.append(f"Signatures: {steps}{' (planned)' if dry_run else ''}")
    attestations = attestation_totals(plan)
    if any(attestations.values()):
        steps = ", ".join(f"{step} {count:,}" for step, count in attestations.items())
        out.append(f"Attestations: {steps}{' (planned)' if dry_run else ''}")
    return "\n".join(out)


def snapshot_notes(registry: str, names_below: str, tags_only: int) -> list[str]:
    """What a reader of a registry snapshot must know about it, for stderr."""
    notes: list[str] = []
    if names_below != registry:
        notes.append(f"note: {registry} is a repository; image names are relative to {names_below}")
    if tags_only:
        noun = "repository" if tags_only == 1 else "repositories"
        notes.append(
            f"note: {registry} lists tags, not digests ({tags_only:,} {noun}): a digest with "
            "no tag that is no child of a listed index cannot be seen and is not in this "
            "snapshot (only registries with a digest listing, such as Google's, show it)"
        )
    return notes
