"""Where cip's memory goes at its peak: tracemalloc over one `cip` command, in this process.

    python3 -m bench.memprofile [--top N] -- run --thin-manifest-dir DIR

A sampler thread watches the traced total and keeps a snapshot each time it grows by a tenth
over the last one kept, so the snapshot printed is the one nearest the peak. tracemalloc slows
the run several times over, so this is never a timed run; sizes are Python allocations only
(peak RSS, measured elsewhere, adds the interpreter and freed-but-kept arenas).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import threading
import tracemalloc

GROWTH = 1.10
POLL_SECONDS = 0.2


def _summary(snapshot: tracemalloc.Snapshot, peak: int, top: int) -> str:
    snapshot = snapshot.filter_traces(
        [
            tracemalloc.Filter(False, tracemalloc.__file__),
            tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"),
        ]
    )
    stats = snapshot.statistics("lineno")
    total = sum(s.size for s in stats)
    lines = [f"traced peak {peak / 2**20:.0f} MiB; snapshot nearest it {total / 2**20:.0f} MiB"]
    for stat in stats[:top]:
        frame = stat.traceback[0]
        name = frame.filename.replace(sys.prefix, "…")
        for marker in ("/src/cip/", "/lib/python3"):
            if marker in name:
                name = "…" + name[name.index(marker) :]
        lines.append(f"{stat.size / 2**20:8.1f} MiB {stat.count:>9,} blocks  {name}:{frame.lineno}")
    return "\n".join(lines)


def profile(argv: list[str], top: int = 20) -> str:
    """Run `cip *argv` here under tracemalloc; the summary of the snapshot nearest the peak."""
    from cip.cli.main import cli

    tracemalloc.start(1)
    kept: list[tuple[int, tracemalloc.Snapshot | None]] = [(0, None)]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(POLL_SECONDS):
            current, _ = tracemalloc.get_traced_memory()
            if current > kept[0][0] * GROWTH:
                kept[0] = (current, tracemalloc.take_snapshot())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink), contextlib.suppress(SystemExit):
            cli.main(args=argv, prog_name="cip", standalone_mode=True)
    finally:
        stop.set()
        sampler.join()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    snapshot = kept[0][1]
    return _summary(snapshot, peak, top) if snapshot is not None else "nothing traced"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("argv", nargs=argparse.REMAINDER, help="cip's arguments, after --")
    args = parser.parse_args()
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    print(profile(argv, args.top))


if __name__ == "__main__":
    main()
