"""Benchmark: `cip check` on a pull request to the corpus-sized manifests adding one image.

The Kubernetes corpus (75 subprojects, 720,000 edges) is committed into a fresh git repository
as the base; one subproject's registries are pointed at lab registries (staging and three
mirrors) and the change adds one multi-platform digest to one of its images. `cip check` then
runs as a presubmit would: the whole CLI in a subprocess, against the working tree and against
the commit (`--head`). Target: a few seconds; the registries see only the requests for the
changed image.

    python3 -m bench.cases_check [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.lab.images import oci_index, push

from bench.corpus_load import DEFAULT_CORPUS, corrected_copy
from bench.lab import Lab, marks_of, request_counts, run_measured, spread
from cip.registry.connect import open_http_registry

TARGET_SECONDS = 3.0
MIRRORS = 3
SEED = 900


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=bench", "-c", "user.email=bench@cip", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def _subproject(corpus: Path) -> tuple[str, str]:
    """The first subproject (alphabetically) and the first image it lists."""
    for manifest in sorted((corpus / "manifests").glob("*/promoter-manifest.yaml")):
        name = manifest.parent.name
        images = corpus / "images" / name / "images.yaml"
        for line in images.read_text().splitlines():
            if line.startswith("- name: "):
                return name, line.removeprefix("- name: ").strip()
    raise RuntimeError(f"no subproject with images in {corpus}")


def _add_digest(images: Path, image: str, digest: str, tag: str) -> None:
    """One new dmap line under `image`, as a pull request adds it."""
    lines = images.read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.strip() == f"- name: {image}")
    dmap = next(i for i in range(at, len(lines)) if lines[i].strip() == "dmap:")
    lines.insert(dmap + 1, f'    "{digest}": ["{tag}"]\n')
    images.write_text("".join(lines))


def pull_request(
    lab: Lab, workdir: Path, rounds: int, log: Callable[[str], None]
) -> dict[str, Any]:
    staging = lab.registry("check-staging")
    mirrors = [lab.registry(f"check-mirror{i}") for i in range(MIRRORS)]
    root = corrected_copy(DEFAULT_CORPUS, workdir / "check-repo")
    subproject, image = _subproject(root)
    (root / "manifests" / subproject / "promoter-manifest.yaml").write_text(
        f"registries:\n- name: {staging.host}/stage\n  src: true\n"
        + "".join(f"- name: {m.host}/prod\n" for m in mirrors)
    )
    added = oci_index(SEED)

    async def fill() -> None:
        async with open_http_registry(staging.host) as client:
            await push(client, f"stage/{image}", added, "bench")

    asyncio.run(fill())
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "base: the corpus")
    base = _git(root, "rev-parse", "HEAD")
    _add_digest(root / "images" / subproject / "images.yaml", image, added.digest, "bench-1")
    argv = [sys.executable, "-m", "cip.cli", "check", f"--thin-manifest-dir={root}"]
    argv += ["--diff-base", base, "--output=json"]
    labs = {"staging": staging, **{f"mirror{i}": m for i, m in enumerate(mirrors)}}
    variants: dict[str, Any] = {}
    for name, extra in (("working tree", []), ("--head commit", ["--head", "HEAD"])):
        if extra:
            _git(root, "commit", "-qam", "add one image")
        log(f"  cip check, head: {name}")
        seconds, rss = [], []
        counts: dict[str, Any] = {}
        for _ in range(rounds):
            marks = marks_of(labs)
            done = run_measured([*argv, *extra]).check("cip check")
            document = json.loads(done.stdout)
            assert document["change"]["added"] == 1, document["change"]
            seconds.append(done.seconds)
            rss.append(done.rss_mb)
            counts = request_counts(labs, marks)
        variants[name] = {
            "seconds": spread(seconds),
            "rss_mb": max(rss),
            "requests": counts,
            "checks": {c["id"]: c["status"] for c in document["checks"]},
        }
    for registry in (staging, *mirrors):
        lab.discard(registry)
    return {
        "case": "cip check: one image added to the corpus",
        "rounds": rounds,
        "subproject": subproject,
        "image": image,
        "edges": document["summary"]["edges"],
        "target_seconds": TARGET_SECONDS,
        "variants": variants,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cip-bench-check-") as folder:
        lab = Lab(Path(folder) / "lab")
        try:
            result = pull_request(lab, Path(folder), args.rounds, print)
        finally:
            lab.close()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
