"""The auditor's verdicts for people and programs: POST answers, log lines, reconcile reports.

One shape for a decision everywhere (the service's answers, its log lines and the reconcile
document): `verdict`, `rule`, `reason`, `manifest`, `parent` and the `event` judged. Log lines
are single-line JSON with `severity`, `message` and `time`, the fields Cloud Logging reads,
and `manifests_commit`, the commit of the manifests that judged (null for files). /healthz
and `POST /refresh` answer JSON about the manifests in use.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cip.audit.events import RegistryEvent
from cip.audit.gitsource import redact
from cip.audit.verdicts import Decision, Verdict

if TYPE_CHECKING:
    from cip.audit.reconcile import ReconcileResult
    from cip.audit.refresh import ManifestsInUse, RefreshResult

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

    def decision_line(self, decision: Decision, commit: str | None = None) -> str:
        line = {
            "severity": SEVERITIES[decision.verdict],
            "message": _headline(decision),
            "time": _time(datetime.now(UTC)),
            **decision_json(decision),
            "manifests_commit": commit,
        }
        return json.dumps(line, sort_keys=False)

    def health(self, manifests: ManifestsInUse) -> bytes:
        current = manifests.current
        shown: dict[str, object] = {
            "source": "files" if manifests.git is None else "git",
            "commit": current.commit,
            "loaded": _time(datetime.fromtimestamp(current.loaded_at, UTC)),
        }
        if manifests.git is not None:
            shown.update(
                url=redact(manifests.git.url),
                branch=manifests.git.branch,
                path=manifests.git.path,
                last_refresh=refresh_json(manifests.last_refresh),
            )
        return json.dumps({"status": "ok", "manifests": shown}).encode()

    def refresh_answer(self, result: RefreshResult) -> bytes:
        return json.dumps(refresh_json(result)).encode()

    def reconcile_line(self, result: ReconcileResult) -> str:
        counts = result.counts()
        return (
            f"reconcile: {_count(len(result.registries), 'registry', 'registries')}, "
            f"{_count(result.repositories, 'repository', 'repositories')}, "
            f"{len(result.decisions)} tags and digests: {counts['verified']} verified, "
            f"{counts['rejected']} rejected, {_count(counts['error'], 'error', 'errors')}"
        )


def refresh_json(result: RefreshResult | None) -> dict[str, object] | None:
    if result is None:
        return None
    return {
        "outcome": str(result.outcome),
        "commit": result.in_use,
        "fetched": result.fetched,
        "message": result.message,
        "problems": list(result.problems),
        "time": _time(datetime.fromtimestamp(result.at, UTC)),
    }


def _time(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
