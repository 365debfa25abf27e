"""The manifests the auditor judges with: fixed files, or a git branch it follows.

With git, a refresh fetches the branch; a new commit is exported, validated and swapped in
whole, so every event is judged by one commit's manifests. A commit whose manifests fail
validation (or cannot be fetched) is not used: the previous good set stays, and the failure
is returned as data, for the log, the metrics and the caller of `POST /refresh`.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from cip.audit.gitsource import Export, GitSource, redact
from cip.audit.judge import Auditor
from cip.errors import CipError
from cip.promote.pipeline import ValidatedManifests, load_and_validate

log = logging.getLogger(__name__)

MAX_LOGGED_PROBLEMS = 20  # one log line each; the rest are counted


@dataclass(frozen=True)
class ManifestSet:
    """One loaded, valid set of manifests and the auditor judging with it."""

    auditor: Auditor
    commit: str | None  # None for manifest files given on the command line
    loaded_at: float  # Unix time


class RefreshOutcome(StrEnum):
    LOADED = "loaded"  # a new commit is in use
    UNCHANGED = "unchanged"  # the branch is still at the commit in use
    INVALID = "invalid"  # the new commit's manifests failed validation: the old set stays
    FAILED = "failed"  # the repository could not be fetched or exported: the old set stays


REFRESH_OUTCOMES = tuple(RefreshOutcome)


@dataclass(frozen=True)
class RefreshResult:
    outcome: RefreshOutcome
    in_use: str | None  # the commit judging events after this refresh
    fetched: str | None  # the branch's newest commit, when it could be fetched
    message: str
    problems: tuple[str, ...] = ()  # the validation errors, `path:line:column: error: …`
    at: float = 0.0  # Unix time

    @property
    def current(self) -> bool:
        """Whether the set in use is the branch's newest commit."""
        return self.outcome in (RefreshOutcome.LOADED, RefreshOutcome.UNCHANGED)


BuildAuditor = Callable[[ValidatedManifests], Auditor]


class ManifestsInUse:
    """Manifest files from the command line: loaded once, never refreshed."""

    current: ManifestSet
    last_refresh: RefreshResult | None

    def __init__(self, current: ManifestSet) -> None:
        self.current = current
        self.last_refresh: RefreshResult | None = None

    @property
    def git(self) -> GitSource | None:
        return None

    async def refresh(self) -> RefreshResult:
        raise NotImplementedError("manifest files are not refreshed")


class GitManifests(ManifestsInUse):
    """`--manifests-git`: the branch's newest commit, refreshed on demand."""

    def __init__(self, source: GitSource, build: BuildAuditor) -> None:
        self.source = source
        self.build = build
        self._export: Export | None = None
        self._lock = asyncio.Lock()  # one refresh at a time: the timer and POST /refresh
        self.last_refresh = None

    @property
    def git(self) -> GitSource:
        return self.source

    async def start(self) -> ManifestSet:
        """The first set; its failure stops the service from starting (CipError, exit 2)."""
        commit = await self.source.fetch()
        export = await self.source.export(commit)
        try:
            auditor = await asyncio.to_thread(self._load, export)
        except CipError:
            shutil.rmtree(export.folder, ignore_errors=True)
            raise
        self._export = export
        self.current = ManifestSet(auditor, commit, time.time())
        self.last_refresh = RefreshResult(
            RefreshOutcome.LOADED, commit, commit, f"loaded commit {commit}", at=time.time()
        )
        log.info("manifests: %s at commit %s", self.source.shown, commit)
        return self.current

    async def refresh(self) -> RefreshResult:
        async with self._lock:
            result = await self._refresh()
            self.last_refresh = result
            return result

    async def _refresh(self) -> RefreshResult:
        in_use = self.current.commit
        try:
            fetched = await self.source.fetch()
        except CipError as error:
            message = f"cannot fetch {self.source.shown}: {error.message}; still using {in_use}"
            log.error("manifests: %s", message)
            return RefreshResult(RefreshOutcome.FAILED, in_use, None, message, at=time.time())
        if fetched == in_use:
            message = f"commit {fetched} is in use already"
            return RefreshResult(RefreshOutcome.UNCHANGED, in_use, fetched, message, at=time.time())
        try:
            export = await self.source.export(fetched)
        except CipError as error:
            message = f"{error.message}; still using {in_use}"
            log.error("manifests: %s", message)
            return RefreshResult(RefreshOutcome.FAILED, in_use, fetched, message, at=time.time())
        try:
            auditor = await asyncio.to_thread(self._load, export)
        except CipError as error:
            shutil.rmtree(export.folder, ignore_errors=True)
            return self._invalid(error, in_use, fetched)
        previous, self._export = self._export, export
        self.current = ManifestSet(auditor, fetched, time.time())
        if previous is not None:
            shutil.rmtree(previous.folder, ignore_errors=True)
        log.info("manifests: commit %s in use (was %s)", fetched, in_use)
        message = f"loaded commit {fetched} (was {in_use})"
        return RefreshResult(RefreshOutcome.LOADED, fetched, fetched, message, at=time.time())

    def _load(self, export: Export) -> Auditor:
        """Load and validate one export (in a thread: a large corpus takes seconds)."""
        target = str(export.target)
        plain, thin = ([], [target]) if export.thin else ([target], [])
        validated = load_and_validate(plain, thin)
        for warning in validated.warnings:
            log.warning("manifests at commit %s: %s", export.commit[:12], warning.render())
        return self.build(validated)

    def _invalid(self, error: CipError, in_use: str | None, fetched: str) -> RefreshResult:
        problems = tuple(redact(d.render()) for d in error.diagnostics) or (error.message,)
        count = sum(1 for d in error.diagnostics if d.severity == "error") or 1
        noun = "error" if count == 1 else "errors"
        message = f"the manifests at commit {fetched} have {count} {noun}; still using {in_use}"
        log.error("manifests: %s", message)
        for problem in problems[:MAX_LOGGED_PROBLEMS]:
            log.error("manifests: %s", problem)
        if len(problems) > MAX_LOGGED_PROBLEMS:
            log.error("manifests: … and %d more", len(problems) - MAX_LOGGED_PROBLEMS)
        return RefreshResult(
            RefreshOutcome.INVALID, in_use, fetched, message, problems, at=time.time()
        )

    def close(self) -> None:
        """Remove the export in use (the caller removes the whole working folder)."""
        if self._export is not None:
            shutil.rmtree(self._export.folder, ignore_errors=True)
