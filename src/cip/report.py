"""Rendering of results for people (text) and programs (JSON); nothing here decides anything."""

from __future__ import annotations

import json
from dataclasses import asdict

from cip.errors import Diagnostic
from cip.plan.edges import EdgeSummary

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
