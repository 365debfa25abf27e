"""The benchmark lab: registries, measured subprocesses, request counts and digest checks.

Registries come from the test lab (`tests/lab/registry_lab.py`), so benchmarks and tests share
one way of starting, logging and stopping them. Every contender runs as a subprocess under GNU
`time -f %M`, so its peak RSS is the kernel's figure for that process alone, not a sampled
guess. Request counts come from the registries' own access logs: the cost a registry pays,
whoever the client is.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from tests.lab.registry_lab import LabRegistry, start_registry

from cip.oci import media

GNU_TIME = "/usr/bin/time"
REPO_ROOT = Path(__file__).resolve().parents[1]
WRITE_METHODS = frozenset({"PUT", "POST", "PATCH", "DELETE"})


class Lab:
    """Registries started for one benchmark run; `close()` stops each by its own PID."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._started: list[LabRegistry] = []

    def registry(self, name: str) -> LabRegistry:
        lab = start_registry(self.root / f"{name}-{len(self._started)}")
        self._started.append(lab)
        return lab

    def discard(self, lab: LabRegistry) -> None:
        """Stop one registry and delete its storage (large blobs must not pile up on disk)."""
        lab.stop()
        shutil.rmtree(lab.root, ignore_errors=True)
        self._started = [s for s in self._started if s is not lab]

    def close(self) -> None:
        for lab in self._started:
            lab.stop()
        self._started = []


# -- numbers ------------------------------------------------------------------------------------


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median and min–max: the medians are compared, the range shows the noise."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def request_counts(labs: Mapping[str, LabRegistry], marks: Mapping[str, int]) -> dict[str, Any]:
    """Requests per registry role since `marks`, by method, with writes and blob bytes flagged."""
    out: dict[str, Any] = {}
    for role, lab in labs.items():
        entries = lab.requests_since(marks[role])
        methods = Counter(e.method for e in entries)
        out[role] = {
            "total": len(entries),
            "methods": dict(sorted(methods.items())),
            "writes": sum(n for m, n in methods.items() if m in WRITE_METHODS),
            "blob_gets": sum(
                1 for e in entries if e.method == "GET" and "/blobs/sha256:" in e.path
            ),
            "blob_uploads": sum(
                1 for e in entries if e.method in {"PATCH", "PUT"} and "/blobs/uploads/" in e.path
            ),
        }
    return out


def marks_of(labs: Mapping[str, LabRegistry]) -> dict[str, int]:
    return {role: lab.mark() for role, lab in labs.items()}


def total(counts: Mapping[str, Any], prefix: str = "", key: str = "total") -> int:
    return sum(int(c[key]) for role, c in counts.items() if role.startswith(prefix))


# -- measured subprocesses ----------------------------------------------------------------------


@dataclass
class Measured:
    """One finished subprocess: wall time, peak RSS (MB), CPU time (user + system), output."""

    argv: list[str]
    seconds: float
    rss_mb: float
    returncode: int
    stdout: str = ""
    stderr: str = ""
    cpu_seconds: float = float("nan")

    def check(self, what: str) -> Measured:
        if self.returncode != 0:
            raise RuntimeError(
                f"{what} failed ({self.returncode}): {' '.join(self.argv[:6])} …\n"
                f"{self.stdout[-2000:]}\n{self.stderr[-3000:]}"
            )
        return self


@dataclass
class Running:
    argv: list[str]
    process: subprocess.Popen[str]
    rss_file: Path
    started: float
    stdout_file: Path
    stderr_file: Path
    extra: dict[str, Any] = field(default_factory=dict)

    def wait(self) -> Measured:
        returncode = self.process.wait()
        seconds = time.perf_counter() - self.started
        try:  # GNU time's last line: "%M %U %S"
            rss, user, system = self.rss_file.read_text().strip().splitlines()[-1].split()
            rss_kb, cpu = float(rss), float(user) + float(system)
        except (OSError, ValueError, IndexError):
            rss_kb = cpu = float("nan")
        out = Measured(
            self.argv,
            seconds,
            rss_kb / 1024,
            returncode,
            self.stdout_file.read_text(errors="replace"),
            self.stderr_file.read_text(errors="replace"),
            cpu,
        )
        for path in (self.rss_file, self.stdout_file, self.stderr_file):
            path.unlink(missing_ok=True)
        self.rss_file.parent.rmdir()  # the run's own scratch folder, empty now
        return out


def start_measured(argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> Running:
    """Start `argv` under GNU time; its output goes to files so pipes never block it."""
    scratch = Path(tempfile.mkdtemp(prefix="cip-bench-run-"))
    rss_file, out_file, err_file = scratch / "rss", scratch / "out", scratch / "err"
    full = [GNU_TIME, "-f", "%M %U %S", "-o", str(rss_file), *argv]
    with out_file.open("w") as out, err_file.open("w") as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            full, stdout=out, stderr=err, text=True, cwd=REPO_ROOT, env=dict(env or os.environ)
        )
    return Running(list(argv), process, rss_file, started, out_file, err_file)


def run_measured(argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> Measured:
    return start_measured(argv, env=env).wait()


def run_parallel(commands: Iterable[Sequence[str]]) -> list[Measured]:
    """Start all, wait for all; each Measured.seconds runs from the common start."""
    running = [start_measured(argv) for argv in commands]
    return [r.wait() for r in running]


def cip_argv(manifest: Path, *, confirm: bool) -> list[str]:
    """cip as users run it: the CLI with its defaults (no fixed rate cap, concurrency 32)."""
    argv = [sys.executable, "-m", "cip.cli", "run", "--manifest", str(manifest)]
    return [*argv, "--confirm"] if confirm else argv


# -- digest checks ------------------------------------------------------------------------------


async def _tag_digests(
    host: str, wanted: Mapping[str, Iterable[str]], concurrency: int = 32
) -> dict[tuple[str, str], str | None]:
    limit = asyncio.Semaphore(concurrency)
    headers = {"Accept": media.ACCEPT_MANIFESTS}
    found: dict[tuple[str, str], str | None] = {}
    async with aiohttp.ClientSession(f"http://{host}") as client:

        async def head(repository: str, tag: str) -> None:
            async with (
                limit,
                client.head(f"/v2/{repository}/manifests/{tag}", headers=headers) as response,
            ):
                ok = response.status == 200
                digest = response.headers.get("docker-content-digest")
            found[(repository, tag)] = digest if ok else None

        await asyncio.gather(*(head(r, t) for r, tags in wanted.items() for t in tags))
    return found


def verify_mirrors(
    hosts: Iterable[str], expected: Mapping[str, Mapping[str, str]]
) -> dict[str, int]:
    """Every mirror holds every expected `repository:tag` at the expected digest.

    `expected` maps repository → tag → digest. All contenders' mirrors are checked against the
    same map, so they hold identical digests for every tag; raises on the first difference.
    """
    checked: dict[str, int] = {}
    wanted = {repo: list(tags) for repo, tags in expected.items()}
    for host in hosts:
        found = asyncio.run(_tag_digests(host, wanted))
        wrong = [
            f"{repo}:{tag} is {found[(repo, tag)]}, want {digest}"
            for repo, tags in expected.items()
            for tag, digest in tags.items()
            if found[(repo, tag)] != digest
        ]
        if wrong:
            raise AssertionError(f"{host}: {len(wrong)} tags differ: {wrong[:5]}")
        checked[host] = len(found)
    return checked
