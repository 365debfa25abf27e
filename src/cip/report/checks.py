"""`cip check` for people: the text report on a terminal, and the markdown a bot posts.

Both say which checks passed, failed, warned or were skipped (a skipped check is never shown
as passed), then every finding with the file and line of the manifest entry it is about.
Markdown names files relative to the repository, as a pull request shows them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from cip.checks.catalog import CheckReport
from cip.checks.findings import CheckResult, Finding

MARKS = {"pass": "✅", "fail": "❌", "warn": "⚠️", "skipped": "⏭️"}
_MARKDOWN_SPECIAL = str.maketrans({c: f"\\{c}" for c in "\\`*_[]<>|#"})


def tally(report: CheckReport) -> str:
    """`1 failed, 1 warned, 4 passed, 2 skipped`: every status, zeros left out."""
    counts: Counter[str] = Counter(result.status for result in report.results)
    words = (("fail", "failed"), ("warn", "warned"), ("pass", "passed"), ("skipped", "skipped"))
    return ", ".join(f"{counts[s]} {word}" for s, word in words if counts[s]) or "no checks"


def scope(report: CheckReport) -> str:
    change = report.change
    what = f"base {change.base.describe()}, head {change.head.describe()}"
    if not change.loads:
        return what
    return f"{what}: {_digests(len(change.selected))} changed, {len(change.added):,} added"


def _digests(count: int) -> str:
    return f"{count:,} image digest{'' if count == 1 else 's'}"


def _counts(result: CheckResult) -> str:
    if result.status == "skipped":
        return result.note or "skipped"
    errors = sum(1 for f in result.findings if f.severity == "error")
    warnings = len(result.findings) - errors
    parts = [f"{errors} error{'s' * (errors != 1)}"] if errors else []
    parts += [f"{warnings} warning{'s' * (warnings != 1)}"] if warnings else []
    return ", ".join(parts)


def check_text(report: CheckReport) -> str:
    out = [f"cip check: {scope(report)}", ""]
    id_width = max(len(r.id) for r in report.results)
    for result in report.results:
        detail = _counts(result)
        line = f"  {result.status:<8} {result.id:<{id_width}}  {result.description}"
        out.append(f"{line}: {detail}" if detail else line)
    findings = report.findings
    if findings:
        out += ["", f"Findings ({len(findings)}):"]
        out += [f"  {_text_finding(f)}" for f in findings]
    out += ["", f"Checks: {tally(report)}"]
    return "\n".join(out)


def _text_finding(finding: Finding) -> str:
    """`path:line:column: severity: [check] message`, as compilers and `cip run` print."""
    diagnostic = finding.diagnostic()
    return replace(diagnostic, message=f"[{finding.check}] {diagnostic.message}").render()


def escape_markdown(text: str) -> str:
    """Text that renders as itself: names and YAML errors may hold `_`, `*`, `|` or `<`."""
    return text.translate(_MARKDOWN_SPECIAL).replace("\n", " ")


def _place(report: CheckReport, finding: Finding) -> str:
    if finding.file is None:
        return ""
    where = report.change.relative(finding.file)
    if finding.line is not None:
        where += f":{finding.line}"
    return f"`{where}` "


def check_markdown(report: CheckReport) -> str:
    """A summary for a pull request comment or `$GITHUB_STEP_SUMMARY`: a table, then findings."""
    change = report.change
    out = [
        f"### cip check: {tally(report)}",
        "",
        f"Base `{change.base.describe()}`, head `{change.head.describe()}`"
        + (
            f": {_digests(len(change.selected))} changed, {len(change.added):,} added."
            if change.loads
            else "."
        ),
        "",
        "| Check | Result | Findings | What it checks |",
        "| --- | --- | --- | --- |",
    ]
    for result in report.results:
        if result.status == "skipped":
            cell = f"{MARKS['skipped']} skipped: {escape_markdown(result.note or '')}"
            count = "–"
        else:
            cell = f"{MARKS[result.status]} {result.status}"
            count = str(len(result.findings))
        out.append(f"| `{result.id}` | {cell} | {count} | {escape_markdown(result.description)} |")
    findings = report.findings
    if findings:
        out += ["", f"#### Findings ({len(findings)})", ""]
        for finding in findings:
            mark = MARKS["fail" if finding.severity == "error" else "warn"]
            out.append(
                f"- {mark} **{finding.severity}** `{finding.check}` {_place(report, finding)}"
                f"{escape_markdown(finding.message)}"
            )
    return "\n".join(out) + "\n"
