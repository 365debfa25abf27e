"""Renderings of `cip sigcheck` and `cip replicate-signatures` results, text and JSON."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict

from cip.errors import Diagnostic, ExitCode
from cip.promote.replicate import ReplicationResult
from cip.promote.sigcheck import SigcheckResult, SignatureFinding
from cip.report.document import RequestTable, render_document


def _finding_line(finding: SignatureFinding) -> str:
    child = f", child of {finding.image}@{finding.parent}" if finding.parent else ""
    line = (
        f"  {finding.problem:<10} {finding.registry}/{finding.image}@{finding.digest}: "
        f"{finding.detail} ({finding.where}{child})"
    )
    if finding.repaired is not None:
        line += f": repaired, {finding.repaired}"
    elif finding.repair_error is not None:
        line += f": not repaired, {finding.repair_error}"
    return line


def sigcheck_text(result: SigcheckResult, *, confirm: bool) -> str:
    problems = [*result.errors, *result.findings]
    out: list[str] = []
    if problems:
        out.append(f"Problems ({len(problems)}):")
        out.extend(_finding_line(f) for f in problems)
        out.append("")
    kinds = Counter(f.problem for f in problems)
    repaired = sum(1 for f in result.findings if f.repaired is not None)
    summary = (
        f"Signatures: {result.checked:,} digests checked on their destinations; "
        f"{kinds['missing']:,} missing, {kinds['invalid']:,} invalid, "
        f"{kinds['unreadable']:,} unreadable"
    )
    summary += f"; {repaired:,} repaired" if confirm else " (check only: nothing written)"
    out.append(summary)
    return "\n".join(out)


def sigcheck_json(
    result: SigcheckResult, *, confirm: bool, warnings: list[Diagnostic], requests: RequestTable
) -> str:
    return render_document(
        command="sigcheck",
        exit_code=ExitCode.OK if result.ok else ExitCode.FAILED,
        dry_run=not confirm,
        warnings=warnings,
        requests=requests,
        signature_check={
            "checked": result.checked,
            "findings": [asdict(f) for f in [*result.errors, *result.findings]],
        },
    )


def replication_text(result: ReplicationResult, *, dry_run: bool) -> str:
    out: list[str] = []
    if result.failures:
        out.append(f"Problems ({len(result.failures)}):")
        out.extend(
            f"  failed    {f.registry}/{f.repository}:{f.tag}: {f.error}" for f in result.failures
        )
        out.append("")
    if result.merges:
        out.append("Merged:" if not dry_run else "To merge:")
        for merge in result.merges:
            target = f"{merge.registry}/{merge.repository}:{merge.tag}"
            out.append(f"  {target}  +{merge.added} from {merge.source}")
        out.append("")
    verb = "to merge (dry run: nothing written)" if dry_run else "merged"
    out.append(
        f"Attached tags: {result.tags_seen:,} on primaries, {len(result.merges):,} {verb}, "
        f"{len(result.failures):,} failed"
    )
    return "\n".join(out)


def replication_json(
    result: ReplicationResult, *, dry_run: bool, warnings: list[Diagnostic], requests: RequestTable
) -> str:
    return render_document(
        command="replicate-signatures",
        exit_code=ExitCode.FAILED if result.failures else ExitCode.OK,
        dry_run=dry_run,
        warnings=warnings,
        requests=requests,
        replication={
            "tags_seen": result.tags_seen,
            "merges": [asdict(m) for m in result.merges],
            "failures": [asdict(f) for f in result.failures],
        },
    )
