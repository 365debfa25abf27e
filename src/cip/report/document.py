"""JSON renderings for programs: the same facts as the text report, grouped by image and digest."""

from __future__ import annotations

import json
from dataclasses import asdict

from cip.errors import Diagnostic
from cip.plan.edges import EdgeSummary
from cip.plan.planner import Action, Plan
from cip.report.rows import ORDER, digest_rows


def diagnostic_json(diagnostic: Diagnostic) -> dict[str, object]:
    return {key: value for key, value in asdict(diagnostic).items() if value is not None}


def parse_summary_json(summary: EdgeSummary, warnings: list[Diagnostic]) -> str:
    document: dict[str, object] = dict(asdict(summary))
    document["warnings"] = len(warnings)
    document["diagnostics"] = [diagnostic_json(w) for w in warnings]
    return json.dumps(document, indent=2)


def plan_json(
    plan: Plan,
    *,
    dry_run: bool,
    warnings: list[Diagnostic],
    requests: dict[str, dict[str, int]] | None = None,
) -> str:
    images: list[dict[str, object]] = []
    for row in digest_rows(plan):
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
