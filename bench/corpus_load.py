"""Offline benchmark: load + validate + edges of the real corpus vs a raw C-loader YAML parse.

Both run in the same process, interleaved, several times; the median of each and their ratio
are printed. Peak RSS is measured in a fresh interpreter per variant, so one variant's garbage
does not count against the other. Target: cip ≤ 2× the raw parse, ≤ 200 MB peak RSS.

    python3 -m bench.corpus_load [--corpus DIR] [--repeat N] [--json]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "k8s-registry"
BAD_DIGEST = "sha256:23eb4b1775fbaa2adca55c73cf0341e1224d6308689b6f4b3aa1523312eb81c"


def corrected_copy(corpus: Path, into: Path) -> Path:
    """The corpus with its one 63-hex digest fixed, so the full pipeline runs to the end."""
    target = into / "corpus"
    shutil.copytree(corpus, target)
    bad = target / "images" / "k8s-staging-ingress-nginx" / "images.yaml"
    bad.write_text(bad.read_text().replace(f'"{BAD_DIGEST}"', f'"{BAD_DIGEST}0"'))
    return target


def raw_parse(corpus: Path) -> int:
    count = 0
    for pattern in ("manifests/*/promoter-manifest.yaml", "images/*/images.yaml"):
        for path in sorted(glob.glob(str(corpus / pattern))):
            with open(path, encoding="utf-8") as stream:
                if yaml.load(stream, Loader=yaml.CSafeLoader) is not None:
                    count += 1
    return count


def cip_load(corpus: Path) -> int:
    from cip.promote.pipeline import load_and_validate

    return load_and_validate([], [str(corpus)]).summary.edges


VARIANTS = {"raw": raw_parse, "cip": cip_load}


def peak_rss_mb(variant: str, corpus: Path) -> float:
    done = subprocess.run(
        [sys.executable, "-m", "bench.corpus_load", "--corpus", str(corpus), "--rss-of", variant],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    return float(done.stdout.strip())


def run(corpus: Path, repeat: int) -> dict[str, object]:
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(repeat):
        for name, function in VARIANTS.items():
            start = time.perf_counter()
            function(corpus)
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    return {
        "case": "offline corpus load",
        "repeat": repeat,
        "seconds": {
            name: {"median": medians[name], "min": min(v), "max": max(v)}
            for name, v in times.items()
        },
        "ratio_cip_to_raw": medians["cip"] / medians["raw"],
        "peak_rss_mb": {name: peak_rss_mb(name, corpus) for name in VARIANTS},
        "edges": cip_load(corpus),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--rss-of", choices=sorted(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_of:
        VARIANTS[args.rss_of](args.corpus)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        return
    with tempfile.TemporaryDirectory() as folder:
        result = run(corrected_copy(args.corpus, Path(folder)), args.repeat)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    seconds = result["seconds"]
    assert isinstance(seconds, dict)
    rss = result["peak_rss_mb"]
    assert isinstance(rss, dict)
    print(f"corpus: {args.corpus} ({os.cpu_count()} cores), {result['edges']:,} edges")
    for name in VARIANTS:
        s = seconds[name]
        print(
            f"  {name:4} median {s['median']:.3f}s (min {s['min']:.3f}, max {s['max']:.3f}), "
            f"peak RSS {rss[name]:.0f} MB"
        )
    print(f"  ratio cip/raw: {result['ratio_cip_to_raw']:.2f}x (target <= 2x, <= 200 MB)")


if __name__ == "__main__":
    main()
