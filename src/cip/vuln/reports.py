"""`--vuln-report DIR`: report files, each bound to the image digest it is about.

A file is bound to the digests its own metadata names (Trivy's `Metadata.RepoDigests`, Grype's
`source.target.manifestDigest`, SARIF's `repoDigests`, CycloneDX's `pkg:oci` purl), else to the
digest in its name (`sha256-<hex>.json`, `sha256-<hex>.sarif`, `sha256-<hex>.cdx.json`…).
Metadata wins over the name, so a file named for one image but about another is never used for
the first, and the assessment says so. Files whose names end in `.json` or `.sarif` are read, in
folders below DIR too; a file that is no report, or names no digest either way, is bad input.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cip.errors import Diagnostic, UsageError
from cip.vuln.formats import ParsedReport, ReportError, parse_text

REPORT_SUFFIXES = (".json", ".sarif")
MAX_REPORT = 256 * 1024 * 1024  # a report is JSON held in memory; larger is no report
_NAMED = re.compile(r"^sha256-(?P<hex>[0-9a-f]{64})(?:\.|$)")


@dataclass(frozen=True, slots=True)
class ReportFile:
    path: str
    report: ParsedReport
    named: str | None  # the digest its file name gives, if any

    @property
    def about(self) -> frozenset[str]:
        """The digests it is used for: its metadata's, else its name's."""
        if self.report.digests:
            return self.report.digests
        return frozenset({self.named}) if self.named else frozenset()

    def source(self) -> str:
        scanner = f" by {self.report.scanner}" if self.report.scanner else ""
        return f"{self.report.format}{scanner} {self.path}"


def named_digest(path: str) -> str | None:
    match = _NAMED.match(os.path.basename(path))
    return f"sha256:{match['hex']}" if match else None


@dataclass
class ReportDirectory:
    files: list[ReportFile] = field(default_factory=list)
    _about: dict[str, list[ReportFile]] = field(default_factory=dict)
    _misnamed: dict[str, list[ReportFile]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for report in self.files:
            for digest in report.about:
                self._about.setdefault(digest, []).append(report)
            if report.named is not None and report.named not in report.about:
                self._misnamed.setdefault(report.named, []).append(report)

    def about(self, digest: str) -> list[ReportFile]:
        return self._about.get(digest, [])

    def misnamed(self, digest: str) -> list[ReportFile]:
        """Files named for `digest` whose metadata names other digests: not used for it."""
        return self._misnamed.get(digest, [])


def _files(folder: Path) -> list[Path]:
    found: list[Path] = []
    for here, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [
            Path(here, n)
            for n in sorted(names)
            if n.endswith(REPORT_SUFFIXES) and not n.startswith(".")
        ]
    return found


def _read(path: Path) -> bytes:
    with open(path, "rb") as handle:
        data = handle.read(MAX_REPORT + 1)
    if len(data) > MAX_REPORT:
        raise ReportError(f"larger than {MAX_REPORT // 2**20} MiB")
    return data


def load_reports(folders: Sequence[str]) -> ReportDirectory:
    """Every report under the folders; every problem at once, naming its file (exit 2)."""
    problems: list[Diagnostic] = []
    files: list[ReportFile] = []
    for folder in folders:
        if not os.path.isdir(folder):
            problems.append(Diagnostic(f"--vuln-report={folder}: not a folder", file=folder))
            continue
        for path in _files(Path(folder)):
            shown = str(path)
            try:
                report = parse_text(_read(path))
            except ReportError as error:
                problems.append(Diagnostic(str(error), file=shown))
                continue
            except OSError as error:
                problems.append(Diagnostic(f"cannot read it: {error.strerror}", file=shown))
                continue
            entry = ReportFile(shown, report, named_digest(shown))
            if not entry.about:
                problems.append(
                    Diagnostic(
                        f"this {report.format} names no image digest: neither its content nor "
                        "its file name (sha256-<hex>.json) says which image it is about",
                        file=shown,
                    )
                )
                continue
            files.append(entry)
    if problems:
        noun = "report" if len(problems) == 1 else "reports"
        raise UsageError(f"{len(problems)} unusable vulnerability {noun}", tuple(problems))
    return ReportDirectory(files)
