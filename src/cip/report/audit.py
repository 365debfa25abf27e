"""The auditor's verdicts for people and programs: POST answers, log lines, reconcile reports.

One shape for a decision everywhere (the service's answers, its log lines and the reconcile
document): `verdict`, `rule`, `reason`, `manifest`, `parent` and the `event` judged. Log lines
are single-line JSON with `severity`, `message` and `time`, the fields Cloud Logging reads.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cip.audit.events import RegistryEvent
from cip.audit.verdicts import Decision, Verdict

if TYPE_CHECKING:
    from cip.audit.reconcile import ReconcileResult

SEVERITIES = {Verdict.VERIFIED: "INFO", Verdict.REJECTED: "ERROR", Verdict.ERROR: "WARNING"}


def event_json(event: RegistryEvent) -> dict[str, object]:
    return {
        "source": event.source,
        "id": event.id,
        "action": event.action,
        "registry": event.registry,
        "repository": event.repository,
        "digest": event.digest,
        "tag": event.tag,
        "media_type": event.media_type,
        "problem": event.problem,
        "payload": event.payload,
    }


def decision_json(decision: Decision) -> dict[str, object]:
    return {
        "verdict": str(decision.verdict),
        "rule": str(decision.rule),
        "reason": decision.reason,
        "manifest": decision.manifest,
        "parent": decision.parent,
        "event": event_json(decision.event),
    }


def _headline(decision: Decision) -> str:
    event = decision.event
    what = f"{event.action} {event.reference}" if event.kind != "invalid" else "message"
    return f"{decision.verdict} {event.source} {what} ({decision.rule}): {decision.reason}"


class AuditRenderer:
    """The `Renderer` the service takes: bodies of its answers and its log lines."""

    def answer(self, decisions: Sequence[Decision], ignored: int) -> bytes:
        body = {"events": [decision_json(d) for d in decisions], "ignored": ignored}
        return json.dumps(body).encode()

    def refusal(self, message: str) -> bytes:
        return json.dumps({"error": message}).encode()

    def decision_line(self, decision: Decision) -> str:
        line = {
            "severity": SEVERITIES[decision.verdict],
            "message": _headline(decision),
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            **decision_json(decision),
        }
        return json.dumps(line, sort_keys=False)

    def reconcile_line(self, result: ReconcileResult) -> str:
        counts = result.counts()
        return (
            f"reconcile: {_count(len(result.registries), 'registry', 'registries')}, "
            f"{_count(result.repositories, 'repository', 'repositories')}, "
            f"{len(result.decisions)} tags and digests: {counts['verified']} verified, "
            f"{counts['rejected']} rejected, {_count(counts['error'], 'error', 'errors')}"
        )


def _count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"


def reconcile_json(result: ReconcileResult) -> dict[str, object]:
    """The `audit` part of the `cip audit reconcile` document."""
    return {
        "registries": list(result.registries),
        "repositories": result.repositories,
        "tags_only": result.tags_only,
        "verdicts": result.counts(),
        "problems": [decision_json(d) for d in result.problems],
    }


def reconcile_text(result: ReconcileResult) -> str:
    """Problems first, one per line, then the totals."""
    lines = []
    for decision in result.problems:
        event = decision.event
        name = event.reference if event.repository else (event.registry or "")
        lines.append(f"  {decision.verdict:<9} {name}: {decision.rule}: {decision.reason}")
        if decision.manifest:
            lines[-1] += f" ({decision.manifest})"
    if result.tags_only:
        lines.append(
            f"  note      {_count(result.tags_only, 'repository lists', 'repositories list')} "
            "tags only: untagged digests there cannot be seen"
        )
    lines.append(AuditRenderer().reconcile_line(result))
    return "\n".join(lines)
