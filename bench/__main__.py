"""`python3 -m bench`: every benchmark case of the project in one run, into BENCHMARKS.md.

One process starts its own lab of real registries, builds deterministic images, runs the cases
(cip side by side with skopeo and raw baselines), checks that every contender's mirrors hold
the same digests, writes the raw results as JSON and regenerates BENCHMARKS.md from them.
Running everything in one go on one machine is the point: ratios between contenders measured
minutes apart on the same cores mean something; numbers copied from elsewhere do not.

    python3 -m bench [--quick] [--cases 2,3,5] [--out BENCHMARKS.md] [--json bench/results.json]

A run of some cases (`--cases K1,K2`) keeps the other cases' results from the JSON file and
says, per case, which command measured it and when.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import (
    cases_blob,
    cases_check,
    cases_k8s,
    cases_latency,
    cases_promote,
    cases_scale,
    corpus_load,
    report,
    startup,
)
from bench import corpus as corpora
from bench.lab import REPO_ROOT, Lab
from bench.profile import profile_cip
from bench.skopeo import version as skopeo_version

ALL_CASES = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "check", "K1", "K2")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    registry = subprocess.run(
        ["docker-registry", "--version"], capture_output=True, text=True, check=False
    ).stdout.split()
    os_name = platform.platform()
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "memory_gib": memory,
        "os": os_name,
        "python": platform.python_version(),
        "docker_registry": registry[-1].lstrip("v") if registry else "unknown",
        "skopeo": skopeo_version(),
        "aiohttp": _version("aiohttp"),
        "uvloop": _version("uvloop"),
        "httpx": _version("httpx"),
    }


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _case1(quick: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cip-bench-corpus-") as folder:
        corpus = corpus_load.corrected_copy(corpus_load.DEFAULT_CORPUS, Path(folder))
        return corpus_load.run(corpus, 2 if quick else 5)


def run_cases(
    cases: list[str],
    quick: bool,
    workdir: Path,
    log: Callable[[str], None],
    checkpoint: Callable[[dict[str, Any], dict[str, str]], None],
) -> tuple[dict[str, Any], dict[str, str]]:
    """Run the selected cases; `checkpoint` gets the results so far after each case, so a run
    cut short still leaves what it measured."""
    results: dict[str, Any] = {}
    profiles: dict[str, str] = {}
    rounds = 2 if quick else 5
    lab = Lab(workdir / "lab")
    try:
        if "1" in cases:
            log("case 1: offline corpus load")
            results["1"] = _case1(quick)
            checkpoint(results, profiles)
        if "8" in cases:
            log("case 8: start-up")
            results["8"] = startup.run(3 if quick else 7)
            checkpoint(results, profiles)
        if "4" in cases:
            log("case 4: one large blob")
            results["4"] = cases_blob.large_blob(
                lab, workdir, 64 if quick else 512, rounds, log, profile_missed=not quick
            )
            checkpoint(results, profiles)
        if "6" in cases:
            log("case 6: planning request rate")
            results["6"] = cases_scale.planning_rate(lab, 300 if quick else 1000, rounds, 32, log)
            checkpoint(results, profiles)
        if {"2", "3", "5", "9"} & set(cases):
            log("cases 2, 3, 5: filling staging")
            staging = cases_promote.setup_staging(lab, workdir, quick)
            if {"2", "3"} & set(cases):
                case2, case3 = cases_promote.cold_and_rerun(
                    lab, staging, rounds if "3" in cases else 0, log
                )
                results["2"] = case2
                if "3" in cases:
                    results["3"] = case3
                    if not quick and case3["ratios"][cases_promote.SEQUENTIAL] < 2.5:
                        log("  profiling a no-op rerun of cip (target missed)")
                        profiles["case 3: no-op rerun"] = profile_cip(
                            workdir / "promote.yaml", confirm=True
                        )
                checkpoint(results, profiles)
                ratios = case2["ratios"]
                if not quick and (
                    ratios[cases_promote.SEQUENTIAL] < 3 or ratios[cases_promote.PARALLEL] < 2.5
                ):
                    log("  profiling a cold promotion of cip (target missed)")
                    profiles["case 2: cold promotion (a fifth of the corpus)"] = _profile_cold(
                        lab, staging
                    )
            if "5" in cases:
                results["5"] = cases_promote.same_registry(staging, log)
                checkpoint(results, profiles)
            if "9" in cases:
                log("case 9: one mirror, on loopback and 20 ms away")
                results["9"] = cases_latency.one_mirror(lab, staging, log)
                checkpoint(results, profiles)
            lab.discard(staging.lab)
        if "check" in cases:
            log("case check: cip check on the corpus with one image added")
            results["check"] = cases_check.pull_request(lab, workdir, rounds, log)
            checkpoint(results, profiles)
        if "7" in cases:
            log("case 7: planning at scale")
            sizes = [200, 1000] if quick else [2000, 10000]
            results["7"] = cases_scale.scale(lab, workdir, sizes, log, profile_missed=not quick)
            checkpoint(results, profiles)
        if "K1" in cases:
            log("case K1: no-op plan of registry.k8s.io against the simulator")
            results["K1"] = cases_k8s.no_op(quick, log, workdir=workdir / "k1")
            profiles.update(results["K1"].pop("profiles", {}))
            checkpoint(results, profiles)
        if "K2" in cases:
            log("case K2: the pull-request path")
            results["K2"] = cases_k8s.pull_request(quick, log, workdir=workdir / "k2")
    finally:
        lab.close()
    for key in ("4", "7"):
        text = results.get(key, {}).pop("profile", None)
        if text:
            profiles[f"case {key}"] = text
    return results, profiles


def _profile_cold(lab: Lab, staging: cases_promote.Staging) -> str:
    entries = staging.corpus.entries
    subset = list(entries[: max(1, len(entries) // 5)]) + [
        e for e in entries if not e.name.startswith("r")
    ]
    mirrors = [lab.registry(f"profile-mirror{i}") for i in range(cases_promote.MIRRORS)]
    path = corpora.cip_manifest(
        staging.workdir / "profile.yaml",
        f"{staging.lab.host}/{corpora.SOURCE_PREFIX}",
        [f"{m.host}/{corpora.MIRROR_PREFIX}" for m in mirrors],
        subset,
    )
    try:
        return profile_cip(path, confirm=True)
    finally:
        for mirror in mirrors:
            lab.discard(mirror)


def _kept_results(path: Path, rerun: list[str]) -> dict[str, Any]:
    """The previous results of the cases not rerun now, with their profiles and provenance."""
    try:
        previous = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    cases = {k: v for k, v in previous.get("cases", {}).items() if k not in rerun}
    by = previous.get("measured_by") or {
        k: {"command": previous.get("command", "?"), "date": "earlier"} for k in cases
    }

    def rerun_profile(name: str) -> bool:
        return any(name.startswith((f"case {c}:", f"case {c} ", f"{c}:")) or name == f"case {c}"
                   for c in rerun)  # fmt: skip

    return {
        "cases": cases,
        "measured_by": {k: v for k, v in by.items() if k in cases},
        "profiles": {n: t for n, t in previous.get("profiles", {}).items() if not rerun_profile(n)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the images, 2 rounds")
    parser.add_argument("--cases", default=",".join(ALL_CASES), help="e.g. 2,3,5")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "BENCHMARKS.md")
    parser.add_argument("--json", type=Path, default=REPO_ROOT / "bench" / "results.json")
    args = parser.parse_args()
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(cases) - set(ALL_CASES))
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(ALL_CASES)}")
    for tool in ("docker-registry", "skopeo", "setpriv", "curl"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not installed (scripts/test installs the lab's packages)")
    started = time.perf_counter()
    command = "python3 -m bench" + (" --quick" if args.quick else "")
    if args.cases != ",".join(ALL_CASES):
        command += f" --cases {args.cases}"
    about = machine()

    kept = _kept_results(args.json, cases) if set(cases) != set(ALL_CASES) else {}
    today = time.strftime("%Y-%m-%d")

    def write(results: dict[str, Any], profiles: dict[str, str]) -> None:
        measured_by = dict(kept.get("measured_by", {}))
        measured_by.update({c: {"command": command, "date": today} for c in results})
        document = {
            "command": command,
            "quick": args.quick,
            "seconds": time.perf_counter() - started,
            "machine": about,
            "cases": {**kept.get("cases", {}), **results},
            "measured_by": measured_by,
            "profiles": {**kept.get("profiles", {}), **profiles},
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=1, sort_keys=False) + "\n")
        args.out.write_text(report.render(document))

    workdir = Path(tempfile.mkdtemp(prefix="cip-bench-"))
    try:
        results, profiles = run_cases(cases, args.quick, workdir, _log, write)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    write(results, profiles)
    _log(f"wrote {args.out} and {args.json} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
