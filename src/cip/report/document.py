"""JSON for programs: one document per command, whatever the outcome, in one documented shape.

Every document has every key of `schema/cip-output.schema.json` (version `SCHEMA_VERSION`):
lists are `[]` and unknown values `null` rather than missing, so a consumer never tests for a
key. Success, problems, invalid manifests, usage errors and interrupts differ only in values
(`ok`, `exit_code`, `errors`, `interrupted`); every command shares the shape and fills its own
keys (`signature_check`, `replication`; `change`, `checks`, `findings` for `cip check`). A
change to the shape updates the schema file and bumps `SCHEMA_VERSION`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Literal

from cip.errors import Diagnostic, ExitCode
from cip.plan.edges import EdgeSummary, summarize
from cip.plan.planner import Action, AttestationStep, Plan, SignatureStep, Verdict
from cip.plan.verification import Verification
from cip.report.merge import Merged, merged_values
from cip.report.rows import (
    EXPLAINED,
    ORDER,
    attestation_totals,
    digest_rows,
    promotion_result,
    signature_totals,
)
from cip.report.verification import verification_object

# 2: signature steps (`signatures`, a destination's `signature`), `cip sigcheck` and
# `cip replicate-signatures` documents (`command`, `signature_check`, `replication`).
# 3: `cip audit reconcile` documents (`command`, `audit`).
# 4: `too-large` verdicts (--max-image-size) and `cip check` documents (`change`,
# `checks`, `findings`).
# 5: `shard`.
# 6: `cip verify` documents (`command` verify, `verification`).
# 7: `vulnerable` verdicts (--vuln-severity-threshold), with a destination's `vulnerability`.
# 8: `interruption` counts any command's units: `unit`, `done`, `not_started` (were
# `edges_done`, `edges_not_started`).
# 9: `verification.signatures`: `cip verify`'s signature check under a verify policy.
# 10: verdicts of staging's verification (`signature-invalid`, `signature-missing`,
# `provenance-invalid`, `provenance-missing`); attestation steps (`attestations`, a
# destination's `attestation`).
SCHEMA_VERSION = 10

if TYPE_CHECKING:  # documents of other commands need none of these modules
    from cip.audit.reconcile import ReconcileResult
    from cip.checks.catalog import CheckReport
    from cip.promote.copy import CopyStats  # annotations only: no event loop for --parse-only

Signal = Literal["SIGINT", "SIGTERM"]
INTERRUPT_EXIT_CODES: dict[Signal, int] = {"SIGINT": 130, "SIGTERM": 143}

# The commands that write a document.
COMMANDS = ("run", "verify", "sigcheck", "replicate-signatures", "audit reconcile", "check")

RequestTable = Mapping[str, Mapping[str, int]]  # host -> "METHOD status" -> count


def diagnostic_json(diagnostic: Diagnostic) -> dict[str, object]:
    """Every field, null when it does not apply: file, line and column point at the cause."""
    return dict(asdict(diagnostic))


def render_document(
    *,
    exit_code: int,
    dry_run: bool | None,
    summary: EdgeSummary | None = None,
    plan: Plan | None = None,
    promotion: str | None = None,
    errors: Iterable[Diagnostic] = (),
    warnings: Iterable[Diagnostic] = (),
    requests: RequestTable | None = None,
    interruption: dict[str, object] | None = None,
    command: str = "run",
    signature_check: dict[str, object] | None = None,
    replication: dict[str, object] | None = None,
    audit: dict[str, object] | None = None,
    check: dict[str, object] | None = None,
    shard: tuple[int, int] | None = None,
    verification: Mapping[str, object] | None = None,
    merged: Mapping[str, object] | None = None,
) -> str:
    """The one document every command writes; keys that do not apply are null or empty.
    `merged` (cip verify --merge) replaces values with the shards' sums."""
    counts = plan.edge_counts() if plan is not None else {}
    check = check or {}
    document: dict[str, object] = {
        "schema_version": SCHEMA_VERSION,
        "command": command if command in COMMANDS else "run",
        "ok": exit_code == ExitCode.OK,
        "exit_code": exit_code,
        "interrupted": interruption is not None,
        "dry_run": dry_run,
        "promotion": promotion,
        "summary": asdict(summary) if summary is not None else None,
        "edges": {str(action): counts.get(action, 0) for action in ORDER},
        "signatures": (
            signature_totals(plan) if plan is not None else {str(step): 0 for step in SignatureStep}
        ),
        "attestations": (
            attestation_totals(plan)
            if plan is not None
            else {str(step): 0 for step in AttestationStep}
        ),
        "images": _images(plan) if plan is not None else [],
        "errors": [diagnostic_json(d) for d in errors],
        "warnings": [diagnostic_json(d) for d in warnings],
        "requests": {host: dict(table) for host, table in (requests or {}).items()},
        "interruption": interruption,
        "signature_check": signature_check,
        "replication": replication,
        "audit": audit,
        "change": check.get("change"),
        "checks": check.get("checks", []),
        "findings": check.get("findings", []),
        "shard": {"index": shard[0], "count": shard[1]} if shard is not None else None,
        "verification": verification,
    }
    document.update(merged or {})
    return json.dumps(document, indent=2)


def _entry(action: Action, verdict: Verdict) -> dict[str, object]:
    """One destination of one digest: the tags this verdict applies to, and why it failed."""
    if action is Action.COPY or action is Action.ADD_TAG:
        tags = list(verdict.tags_to_add)
    elif action is Action.PRESENT:
        tags = list(verdict.tags_present)
    elif action is Action.TAG_MOVE:
        tags = [move.tag for move in verdict.tag_moves]
    else:
        moved = [move.tag for move in verdict.tag_moves]
        tags = sorted({*verdict.tags_present, *verdict.tags_to_add, *moved})
    moves = verdict.tag_moves if action is Action.TAG_MOVE else ()
    return {
        "registry": verdict.destination.name,
        "tags": tags,
        "tag_moves": [{"tag": m.tag, "current": m.current} for m in moves],
        "error": verdict.error if action in EXPLAINED else None,
        "signature": (
            str(verdict.signature)
            if verdict.signature is not None and action is verdict.action is not Action.FAILED
            else None
        ),
        "vulnerability": (
            asdict(verdict.vulnerability)
            if action is Action.VULNERABLE and verdict.vulnerability is not None
            else None
        ),
        "attestation": (
            str(verdict.attestation)
            if verdict.attestation is not None and action is verdict.action is not Action.FAILED
            else None
        ),
    }


def _images(plan: Plan) -> list[dict[str, object]]:
    return [
        {
            "image": row.image,
            "digest": row.digest,
            "tags": sorted(row.tags),
            "manifest": row.where,
            "destinations": {
                str(action): [_entry(action, v) for v in row.by_action.get(action, [])]
                for action in ORDER
            },
        }
        for row in digest_rows(plan)
    ]


def parse_summary_json(summary: EdgeSummary, warnings: list[Diagnostic]) -> str:
    """`--parse-only`: the manifests' numbers and warnings; nothing planned, nothing read."""
    return render_document(exit_code=ExitCode.OK, dry_run=True, summary=summary, warnings=warnings)


def plan_json(
    plan: Plan,
    *,
    dry_run: bool,
    warnings: list[Diagnostic],
    requests: RequestTable | None = None,
    summary: EdgeSummary | None = None,
    stats: CopyStats | None = None,
    shard: tuple[int, int] | None = None,
) -> str:
    """A planned (dry run) or executed run; `stats` of the writes when it was executed."""
    exit_code = ExitCode.FAILED if plan.has_problems else ExitCode.OK
    return render_document(
        exit_code=exit_code,
        dry_run=dry_run,
        summary=summary,
        plan=plan,
        promotion=None if dry_run or stats is None else promotion_result(plan, stats),
        warnings=warnings,
        requests=requests,
        shard=shard,
    )


def reconcile_document(result: ReconcileResult, *, warnings: Iterable[Diagnostic] = ()) -> str:
    """`cip audit reconcile`: what the registries hold that the manifests do not explain."""
    from cip.report.audit import reconcile_json  # the auditor's shapes, loaded for it alone

    return render_document(
        command="audit reconcile",
        exit_code=ExitCode.FAILED if result.problems else ExitCode.OK,
        dry_run=None,
        warnings=warnings,
        audit=reconcile_json(result),
    )


def error_json(
    diagnostics: Iterable[Diagnostic],
    *,
    exit_code: int = ExitCode.BAD_INPUT,
    dry_run: bool | None = None,
    command: str = "run",
) -> str:
    """A run that stopped on bad input (invalid manifests, usage) or an error it cannot pass.

    Errors and warnings are told apart by severity; `dry_run` is null when the flags that set
    it were never read.
    """
    items = list(diagnostics)
    return render_document(
        command=command,
        exit_code=exit_code,
        dry_run=dry_run,
        errors=[d for d in items if d.severity == "error"],
        warnings=[d for d in items if d.severity == "warning"],
    )


def interrupted_json(
    signal: Signal,
    *,
    unit: str | None,
    done: int | None,
    not_started: int | None,
    dry_run: bool | None = None,
    warnings: Iterable[Diagnostic] = (),
    requests: RequestTable | None = None,
    command: str = "run",
) -> str:
    """A command stopped by SIGINT or SIGTERM, and how far it got in its `unit`s (edges for
    `cip run`); unit and counts are null when the units were not known yet."""
    return render_document(
        command=command,
        exit_code=INTERRUPT_EXIT_CODES[signal],
        dry_run=dry_run,
        warnings=warnings,
        requests=requests,
        interruption={
            "signal": signal,
            "unit": unit,
            "done": done,
            "not_started": not_started,
        },
    )


def check_json(report: CheckReport) -> str:
    """`cip check`: the change judged, each check's status, and every finding."""
    change = report.change
    summary = summarize(change.loaded.manifests, change.groups) if change.loads else None
    results = [
        {
            "id": r.id,
            "description": r.description,
            "status": r.status,
            "note": r.note,
            "errors": sum(1 for f in r.findings if f.severity == "error"),
            "warnings": sum(1 for f in r.findings if f.severity == "warning"),
        }
        for r in report.results
    ]
    return render_document(
        command="check",
        exit_code=report.exit_code,
        dry_run=None,
        summary=summary,
        requests=report.requests,
        check={
            "change": {
                "base": {"ref": change.base.ref, "commit": change.base.commit},
                "head": {"ref": change.head.ref, "commit": change.head.commit},
                "selected": len(change.selected),
                "added": len(change.added),
            },
            "checks": results,
            "findings": [asdict(f) for f in report.findings],
        },
    )


def verification_json(
    verification: Verification,
    *,
    warnings: list[Diagnostic],
    requests: RequestTable | None = None,
    summary: EdgeSummary | None = None,
    shard: tuple[int, int] | None = None,
) -> str:
    """`cip verify`: nothing planned or written (`edges` and `images` stay empty); every edge
    not in place is in `verification.gaps`, every signature not verified (with a verify
    policy) in `verification.signatures`."""
    return render_document(
        command="verify",
        exit_code=ExitCode.OK if verification.ok else ExitCode.FAILED,
        dry_run=True,
        summary=summary,
        warnings=warnings,
        requests=requests,
        shard=shard,
        verification=verification_object(verification),
    )


def merged_json(merged: Merged) -> str:
    """`cip verify --merge`: the shards' documents as one (see `report.merge`)."""
    return render_document(
        command="verify",
        exit_code=ExitCode.OK if merged.ok else ExitCode.FAILED,
        dry_run=None,
        merged=merged_values(merged),
    )
