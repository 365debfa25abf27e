"""Case 8: start-up, the fixed cost of every cip command.

Wall time and CPU of `python -c pass` (the interpreter alone), `cip --version` and
`cip run --parse-only` of the demo manifest, interleaved round by round; then
`python -X importtime` of each cip command: how many modules it loads, their summed own time,
and the packages that cost most, so a regression names its cause.

    python3 -m bench.startup [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter
from typing import Any

from bench.lab import REPO_ROOT, run_measured, spread

DEMO = str(REPO_ROOT / "examples" / "demo" / "promoter-manifest.yaml")
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "cip --version": [sys.executable, "-m", "cip.cli", "--version"],
    "cip run --parse-only (demo)": [
        *[sys.executable, "-m", "cip.cli", "run", "--manifest", DEMO, "--parse-only"]
    ],
}
TARGETS = {"cip --version": 0.150, "cip run --parse-only (demo)": 0.250}


def import_profile(argv: list[str], top: int = 8) -> dict[str, Any]:
    """Modules loaded, their summed own import time (ms) and the costliest top-level packages."""
    done = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]], capture_output=True, text=True, check=True
    )
    modules = 0
    own_us = 0
    by_package: Counter[str] = Counter()
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, _cumulative, name = (part.strip() for part in line[12:].split("|"))
        modules += 1
        own_us += int(own)
        by_package[name.split(".")[0]] += int(own)
    return {
        "modules": modules,
        "own_ms": own_us / 1000,
        "packages_ms": {name: us / 1000 for name, us in by_package.most_common(top)},
    }


def run(rounds: int) -> dict[str, Any]:
    for argv in COMMANDS.values():
        run_measured(argv).check("start-up warm-up")  # page cache, .pyc files
    seconds: dict[str, list[float]] = {name: [] for name in COMMANDS}
    cpu: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for round_ in range(rounds):
        order = list(COMMANDS) if round_ % 2 == 0 else list(reversed(COMMANDS))
        for name in order:
            measured = run_measured(COMMANDS[name]).check(name)
            seconds[name].append(measured.seconds)
            cpu[name].append(measured.cpu_seconds)
    return {
        "rounds": rounds,
        "commands": {
            name: {
                "seconds": spread(seconds[name]),
                "cpu_seconds": spread(cpu[name]),
                "imports": import_profile(argv) if name.startswith("cip") else None,
                "target_seconds": TARGETS.get(name),
            }
            for name, argv in COMMANDS.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    print(json.dumps(run(parser.parse_args().rounds), indent=1))


if __name__ == "__main__":
    main()
