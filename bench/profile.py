"""Profiles of one cip subprocess (cProfile, or py-spy sampling), summarised for BENCHMARKS.md.

Only run when a target is missed, in a separate run after the measured ones (a profiler slows
the code it watches, so profiled runs are never the timed ones). The summary lists the
functions with the most own time, and cip's own functions by cumulative time, which together
say whether the time is in cip, in the HTTP stack, or spent waiting for registries.
"""

from __future__ import annotations

import io
import pstats
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench.lab import run_measured


def profile_cip(manifest: Path, *, confirm: bool, top: int = 18) -> str:
    """Profile `cip run --manifest M [--confirm]`; returns a text summary."""
    with tempfile.TemporaryDirectory(prefix="cip-bench-prof-") as folder:
        output = Path(folder) / "cip.prof"
        argv = [sys.executable, "-m", "cProfile", "-o", str(output), "-m", "cip.cli", "run"]
        argv += ["--manifest", str(manifest), *(["--confirm"] if confirm else [])]
        measured = run_measured(argv)
        if measured.returncode not in (0, 1):
            return f"profiled run failed ({measured.returncode}): {measured.stderr[-500:]}"
        text = io.StringIO()
        stats = pstats.Stats(str(output), stream=text)
        text.write(
            f"wall {measured.seconds:.2f} s under cProfile, peak RSS {measured.rss_mb:.0f} MB\n"
        )
        stats.sort_stats("tottime").print_stats(top)
        stats.sort_stats("cumulative").print_stats(r"cip/", top)
    return _trim(text.getvalue())


def _trim(text: str) -> str:
    """Drop pstats' preamble lines and shorten site-packages paths."""
    keep = []
    for line in text.splitlines():
        if not line.strip() or "Ordered by" in line or "List reduced" in line:
            continue
        if ".prof" in line:  # the "<date> <file>.prof" header
            continue
        keep.append(line.replace(sys.prefix, "…").rstrip())
    return "\n".join(keep)


def pyspy_profile(argv: list[str], *, top: int = 18, rate: int = 100) -> str:
    """Sample `argv` (a Python command) with py-spy; own time and cip's inclusive time.

    py-spy samples the running process from outside, so unlike cProfile it barely slows the
    code it watches and sees C-level time (JSON decoding, sockets) where it is spent.
    """
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        return "py-spy is not installed (pip install '.[bench]')"
    with tempfile.TemporaryDirectory(prefix="cip-bench-spy-") as folder:
        raw = Path(folder) / "stacks.txt"
        record = [spy, "record", "--format", "raw", "-r", str(rate), "-o", str(raw), "--"]
        measured = run_measured([*record, *argv])
        if not raw.exists():
            return f"py-spy recorded nothing ({measured.returncode}): {measured.stderr[-500:]}"
        own: Counter[str] = Counter()
        inclusive: Counter[str] = Counter()
        for line in raw.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            frames = stack.split(";")
            own[frames[-1]] += int(count)
            for frame in set(frames):
                inclusive[frame] += int(count)
    total = sum(own.values()) or 1
    out = [f"wall {measured.seconds:.2f} s under py-spy, {total:,} samples at {rate}/s"]
    out.append("own time:")
    out += [f"  {n / total:6.1%}  {f}" for f, n in own.most_common(top)]
    out.append("cip functions, inclusive time:")
    ours = [(f, n) for f, n in inclusive.most_common() if "(cip/" in f and "cli/" not in f]
    out += [f"  {n / total:6.1%}  {f}" for f, n in ours[:top]]
    return "\n".join(out)
