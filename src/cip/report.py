"""Rendering of results for people (text) and programs (JSON); nothing here decides anything."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from cip.errors import Diagnostic
from cip.model.refs import short_digest
from cip.plan.edges import EdgeSummary
from cip.plan.planner import Action, Plan, Verdict

SUMMARY_LABELS = (
    ("manifests", "Manifests"),
    ("image_entries", "Image entries"),
    ("unique_digests", "Unique digests"),
    ("tag_entries", "Tag entries"),
    ("destination_registries", "Destination registries"),
    ("destination_repositories", "Destination repositories"),
    ("edges", "Promotion edges"),
)


def diagnostic_json(diagnostic: Diagnostic) -> dict[str, object]:
    return {key: value for key, value in asdict(diagnostic).items() if value is not None}


def parse_summary_text(summary: EdgeSummary, warnings: int) -> str:
    values = asdict(summary)
    width = max(len(label) for _, label in SUMMARY_LABELS) + 1
    lines = [f"{label + ':':<{width}} {values[key]:>9,}" for key, label in SUMMARY_LABELS]
    lines.append(f"{'Warnings:':<{width}} {warnings:>9,}")
    return "\n".join(lines)


def parse_summary_json(summary: EdgeSummary, warnings: list[Diagnostic]) -> str:
    document: dict[str, object] = dict(asdict(summary))
    document["warnings"] = len(warnings)
    document["diagnostics"] = [diagnostic_json(w) for w in warnings]
    return json.dumps(document, indent=2)


# -- plans ------------------------------------------------------------------------------------


@dataclass
class DigestRow:
    """Everything a plan does with one image digest, over all manifests and destinations."""

    image: str
    digest: str
    tags: set[str] = field(default_factory=set)
    where: str = ""
    by_action: dict[Action, list[Verdict]] = field(default_factory=dict)


def _rows(plan: Plan) -> list[DigestRow]:
    rows: dict[tuple[str, str], DigestRow] = {}
    for verdict in plan.verdicts:
        group = plan.groups[verdict.group]
        row = rows.get((group.image, group.digest))
        if row is None:
            row = rows[(group.image, group.digest)] = DigestRow(
                group.image, group.digest, where=str(group.position)
            )
        row.tags.update(group.tags)
        row.by_action.setdefault(verdict.action, []).append(verdict)
        if verdict.tag_moves:
            row.by_action.setdefault(Action.TAG_MOVE, []).append(verdict)
    return sorted(rows.values(), key=lambda r: (r.image, r.digest))


def _problem_lines(plan: Plan, rows: list[DigestRow]) -> list[str]:
    lines: list[str] = []
    for row in rows:
        ref = f"{row.image}@{row.digest}"
        lost = row.by_action.get(Action.LOST, [])
        if lost:
            source = plan.groups[lost[0].group].source.name
            lines.append(
                f"  lost      {ref} ({row.where}): in neither {source} nor {_destinations(lost)}"
            )
        for verdict in row.by_action.get(Action.TAG_MOVE, []):
            for move in verdict.tag_moves:
                lines.append(
                    f"  tag move  {verdict.destination.name}/{row.image}:{move.tag} is "
                    f"{move.current}; the manifest wants {row.digest} ({row.where}): refused, "
                    "tags never move"
                )
        for verdict in row.by_action.get(Action.FAILED, []):
            lines.append(
                f"  failed    {ref} at {verdict.destination.name}: {verdict.error} ({row.where})"
            )
    return lines


def _destinations(verdicts: list[Verdict]) -> str:
    names = sorted({v.destination.name for v in verdicts})
    return names[0] if len(names) == 1 else f"{len(names)} destinations"


ORDER = (Action.COPY, Action.ADD_TAG, Action.PRESENT, Action.LOST, Action.TAG_MOVE, Action.FAILED)


def plan_text(plan: Plan, *, dry_run: bool) -> str:
    rows = _rows(plan)
    out: list[str] = []
    problems = _problem_lines(plan, rows)
    if problems:
        out.append(f"Problems ({len(problems)}):")
        out.extend(problems)
        out.append("")
    if rows:
        out.append("Images:")
        width = max(len(r.image) for r in rows)
        for row in rows:
            actions = ", ".join(
                f"{action} {len({v.destination.name for v in row.by_action[action]})}"
                for action in ORDER
                if action in row.by_action
            )
            tags = ",".join(sorted(row.tags)) or "(no tag)"
            out.append(f"  {row.image:<{width}}  {short_digest(row.digest)}  {tags}  {actions}")
        out.append("")
    counts = plan.edge_counts()
    totals = ", ".join(f"{action} {counts.get(action, 0):,}" for action in ORDER)
    mode = "dry run: nothing written" if dry_run else "promoted"
    out.append(f"Edges {sum(counts.values()):,}: {totals} ({mode})")
    return "\n".join(out)


def plan_json(
    plan: Plan,
    *,
    dry_run: bool,
    warnings: list[Diagnostic],
    requests: dict[str, dict[str, int]] | None = None,
) -> str:
    images: list[dict[str, object]] = []
    for row in _rows(plan):
        destinations: dict[str, object] = {}
        for action in ORDER:
            verdicts = row.by_action.get(action, [])
            if not verdicts:
                continue
            entries: list[dict[str, object]] = []
            for verdict in verdicts:
                entry: dict[str, object] = {"registry": verdict.destination.name}
                if action is Action.TAG_MOVE:
                    entry["tags"] = {m.tag: m.current for m in verdict.tag_moves}
                elif verdict.tags_to_add and action is not Action.PRESENT:
                    entry["tags"] = list(verdict.tags_to_add)
                if verdict.error is not None and action is Action.FAILED:
                    entry["error"] = verdict.error
                entries.append(entry)
            destinations[str(action)] = entries
        images.append(
            {
                "image": row.image,
                "digest": row.digest,
                "tags": sorted(row.tags),
                "manifest": row.where,
                "destinations": destinations,
            }
        )
    counts = plan.edge_counts()
    document = {
        "dry_run": dry_run,
        "edges": {str(action): counts.get(action, 0) for action in ORDER},
        "ok": not plan.has_problems,
        "images": images,
        "warnings": [diagnostic_json(w) for w in warnings],
        "requests": requests or {},
    }
    return json.dumps(document, indent=2)
