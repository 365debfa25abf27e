"""Trivy run by cip (`--trivy PATH`, or `--scanner trivy` from PATH), one scan per image manifest.

Each platform manifest is scanned by digest, straight from the registry that holds it
(`host/repository@sha256:…`, or `--input DIR@sha256:…` for an `oci:` folder), so the report is
about exactly that digest. Unless `--trivy-offline`, the vulnerability database is downloaded
once per run before the scans (`--download-db-only`, from `--trivy-db-repository` when given),
and the scans then skip the update: concurrent scans never race to replace it. Trivy reads its
own settings (`TRIVY_CACHE_DIR`, `TRIVY_USERNAME`, docker's config.json), which cip passes on
untouched. Scans are subprocesses, bounded in number; one interrupted is killed with it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field

from cip.errors import UsageError
from cip.model.refs import Registry as RegistryName
from cip.transport.settings import NetworkOptions, host_settings
from cip.vuln.formats import ParsedReport, ReportError, parse_text

MAX_SCANS = 4  # trivy is CPU-bound: more processes than this only queue on a CI machine
SCAN_TIMEOUT = 600.0  # seconds; a scan of one platform of one image
OFFLINE_FLAGS = ("--skip-db-update", "--skip-java-db-update", "--offline-scan")


class ScanError(Exception):
    """Trivy did not produce a report; the message says what it printed."""


def find_trivy(path: str | None, scanner: str | None) -> str | None:
    """The trivy executable `--trivy`/`--scanner trivy` name; None when neither is given."""
    if path is not None:
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise UsageError(f"--trivy={path}: not an executable file")
        return path
    if scanner is None:
        return None
    found = shutil.which("trivy")
    if found is None:
        raise UsageError("--scanner trivy: no trivy on PATH (give its place with --trivy PATH)")
    return found


def _tail(text: bytes, lines: int = 3) -> str:
    shown = [line.strip() for line in text.decode(errors="replace").splitlines() if line.strip()]
    return " / ".join(shown[-lines:]) or "no output"


@dataclass
class TrivyScanner:
    executable: str
    network: NetworkOptions = field(default_factory=NetworkOptions)
    db_repository: str | None = None
    offline: bool = False
    max_scans: int = MAX_SCANS
    _gate: asyncio.Semaphore | None = None
    _database: asyncio.Future[str | None] | None = None
    _scans: dict[str, asyncio.Future[ParsedReport]] = field(default_factory=dict)

    def _insecure(self, host: str) -> list[str]:
        # cip allows plain HTTP to loopback and --insecure-registry hosts; trivy needs the flag.
        return ["--insecure"] if host_settings(host, self.network).allow_http else []

    def _db_flags(self) -> list[str]:
        if self.db_repository is None:
            return []
        host = self.db_repository.split("/", 1)[0]
        return ["--db-repository", self.db_repository, *self._insecure(host)]

    async def _run(self, arguments: Sequence[str]) -> tuple[int, bytes, bytes]:
        process = await asyncio.create_subprocess_exec(
            self.executable,
            *arguments,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), SCAN_TIMEOUT)
        finally:
            if process.returncode is None:  # timed out or interrupted: do not leave it behind
                process.kill()
                await process.wait()
        assert process.returncode is not None
        return process.returncode, out, err

    async def _download(self) -> str | None:
        """The database, once per run; None when it is there, else why not."""
        code, _, err = await self._run(
            ["image", "--download-db-only", "--quiet", *self._db_flags()]
        )
        return None if code == 0 else f"trivy could not download its database: {_tail(err)}"

    async def _ready(self) -> str | None:
        if self.offline:
            return None
        if self._database is None:
            self._database = asyncio.ensure_future(self._download())
        return await self._database

    def arguments(self, registry: RegistryName, repository: str, digest: str) -> list[str]:
        """The command line for one scan (after `trivy`)."""
        flags = ["image", "--scanners", "vuln", "--format", "json", "--quiet"]
        flags += list(OFFLINE_FLAGS) if self.offline else ["--skip-db-update"]
        if registry.oci_dir is not None:
            return [*flags, "--input", f"{os.path.join(registry.oci_dir, repository)}@{digest}"]
        host = registry.host
        return [*flags, *self._insecure(host), f"{host}/{repository}@{digest}"]

    async def scan(self, registry: RegistryName, repository: str, digest: str) -> ParsedReport:
        """The report of one image manifest; a digest is scanned once per run, from the first
        repository that asks (the same digest is the same content wherever it is)."""
        task = self._scans.get(digest)
        if task is None:
            task = self._scans[digest] = asyncio.ensure_future(
                self._scan(registry, repository, digest)
            )
        return await task

    async def _scan(self, registry: RegistryName, repository: str, digest: str) -> ParsedReport:
        problem = await self._ready()
        if problem is not None:
            raise ScanError(problem)
        if self._gate is None:
            self._gate = asyncio.Semaphore(self.max_scans)
        async with self._gate:
            try:
                code, out, err = await self._run(self.arguments(registry, repository, digest))
            except (TimeoutError, OSError) as error:
                raise ScanError(f"trivy did not finish: {error or 'timed out'}") from None
        if code != 0:
            raise ScanError(f"trivy exited with {code}: {_tail(err)}")
        try:
            return parse_text(out)
        except ReportError as error:
            raise ScanError(f"trivy's output: {error}") from None
