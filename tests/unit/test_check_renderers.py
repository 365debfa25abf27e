"""Renderers of `cip check` on literal findings: escaping that real data rarely exercises."""

from __future__ import annotations

from pathlib import Path

from cip.checks.catalog import CheckReport
from cip.checks.change import Change, Revision
from cip.checks.findings import CheckResult, Finding
from cip.manifests.load import LoadResult
from cip.report.checks import check_markdown, check_text, escape_markdown
from cip.report.github import annotation


def report_of(tmp_path: Path, findings: list[Finding]) -> CheckReport:
    change = Change(
        root=str(tmp_path),
        base=Revision("main", "a" * 40),
        head=Revision(None, None),
        loaded=LoadResult(),
        groups=[],
        selected=[],
        added=[],
        base_manifests=[],
        touched=frozenset(),
    )
    result = CheckResult("manifest", "loads", "fail", tuple(findings))
    return CheckReport(change, [result])


def test_workflow_command_values_are_escaped_as_the_runner_reads_them(tmp_path: Path) -> None:
    finding = Finding(
        "manifest", "error", "100% sure:\nline two, really", str(tmp_path / "a,b:c.yaml"), 3, 7
    )
    report = report_of(tmp_path, [finding])
    assert annotation(report, finding) == (
        "::error file=a%2Cb%3Ac.yaml,line=3,col=7,title=cip check%3A manifest"
        "::100%25 sure:%0Aline two, really"
    )
    no_place = Finding("manifest", "warning", "no manifests given")
    assert (
        annotation(report, no_place) == "::warning title=cip check%3A manifest::no manifests given"
    )


def test_markdown_escapes_what_would_render_as_markup(tmp_path: Path) -> None:
    assert escape_markdown("a_b | <c> *d* `e`\nf") == "a\\_b \\| \\<c\\> \\*d\\* \\`e\\` f"
    finding = Finding("manifest", "error", "key <x> | y", str(tmp_path / "m.yaml"), 2, 1)
    markdown = check_markdown(report_of(tmp_path, [finding]))
    assert "- ❌ **error** `manifest` `m.yaml:2` key \\<x\\> \\| y" in markdown
    assert "Base `main (aaaaaaaaaaaa)`, head `working tree`: 0 image digests changed" in markdown
    text = check_text(report_of(tmp_path, [finding]))
    assert f"{tmp_path / 'm.yaml'}:2:1: error: [manifest] key <x> | y" in text
