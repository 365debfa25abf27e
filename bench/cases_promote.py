"""Cases 2, 3 and 5: cold promotion, no-op rerun, same-registry promotion.

One staging registry holds the corpus; each contender promotes into its own three fresh mirror
registries (cold), so no contender finds another's work. Cold runs happen once each, cip first
(a warmer staging registry can only help the peers that follow); reruns alternate their order
round by round. After every promotion, every mirror of every contender is checked against the
same repository → tag → digest map, so all hold identical digests for every tag.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.lab.registry_lab import LabRegistry

from bench import corpus as corpora
from bench.lab import (
    Lab,
    Measured,
    cip_argv,
    marks_of,
    request_counts,
    run_measured,
    run_parallel,
    spread,
    total,
    verify_mirrors,
)
from bench.skopeo import SkopeoHome, sync_argv

CIP, SEQUENTIAL, PARALLEL = "cip", "skopeo sync ×3 sequential", "skopeo sync ×3 parallel"
VARIANTS = (CIP, SEQUENTIAL, PARALLEL)
MIRRORS = 3


@dataclass
class Staging:
    lab: LabRegistry
    corpus: corpora.Corpus
    workdir: Path
    sync_yaml: Path
    push_seconds: float


@dataclass
class Contender:
    """One tool's three mirrors, and the skopeo homes it keeps across its runs."""

    name: str
    mirrors: list[LabRegistry]
    homes: list[SkopeoHome] = field(default_factory=list)
    manifest: Path | None = None


def setup_staging(lab: Lab, workdir: Path, quick: bool) -> Staging:
    corpus = corpora.promotion_corpus(20, 1, 1) if quick else corpora.promotion_corpus(200, 5, 3)
    staging = lab.registry("staging")
    started = time.perf_counter()
    corpora.push_corpus(staging.host, corpus)
    pushed = time.perf_counter() - started
    sync_yaml = corpora.skopeo_sync_yaml(
        workdir / "sync.yaml", staging.host, corpus, corpora.SOURCE_PREFIX
    )
    return Staging(staging, corpus, workdir, sync_yaml, pushed)


def _contenders(lab: Lab, staging: Staging) -> dict[str, Contender]:
    out: dict[str, Contender] = {}
    for index, name in enumerate(VARIANTS):
        mirrors = [lab.registry(f"mirror{index}{m}") for m in range(MIRRORS)]
        contender = Contender(name, mirrors)
        if name == CIP:
            contender.manifest = corpora.cip_manifest(
                staging.workdir / "promote.yaml",
                f"{staging.lab.host}/{corpora.SOURCE_PREFIX}",
                [f"{m.host}/{corpora.MIRROR_PREFIX}" for m in mirrors],
                staging.corpus.entries,
            )
        else:
            # One skopeo "machine" for the sequential runs; one per process in parallel.
            contender.homes = [SkopeoHome() for _ in range(1 if name == SEQUENTIAL else MIRRORS)]
        out[name] = contender
    return out


def _run(contender: Contender, staging: Staging) -> dict[str, Any]:
    """One promotion by one contender: time, peak RSS, and requests per registry."""
    labs = {"staging": staging.lab} | {f"mirror{i + 1}": m for i, m in enumerate(contender.mirrors)}
    marks = marks_of(labs)
    destinations = [f"{m.host}/{corpora.MIRROR_PREFIX}" for m in contender.mirrors]
    measured: list[Measured]
    if contender.name == CIP:
        assert contender.manifest is not None
        measured = [run_measured(cip_argv(contender.manifest, confirm=True)).check("cip")]
        seconds = measured[0].seconds
    elif contender.name == SEQUENTIAL:
        home = contender.homes[0]
        measured = [
            run_measured(sync_argv(home, staging.sync_yaml, d)).check("skopeo sync")
            for d in destinations
        ]
        seconds = sum(m.seconds for m in measured)
    else:
        argvs = [
            sync_argv(h, staging.sync_yaml, d)
            for h, d in zip(contender.homes, destinations, strict=True)
        ]
        measured = [m.check("skopeo sync") for m in run_parallel(argvs)]
        seconds = max(m.seconds for m in measured)
    counts = request_counts(labs, marks)
    return {
        "seconds": seconds,
        "cpu_seconds": sum(m.cpu_seconds for m in measured),
        "rss_mb": max(m.rss_mb for m in measured),
        "rss_mb_each": [m.rss_mb for m in measured],
        "requests": counts,
        "requests_total": total(counts),
        "mirror_writes": total(counts, "mirror", "writes"),
        "staging_requests": counts["staging"]["total"],
    }


def _verify(contenders: dict[str, Contender], staging: Staging) -> int:
    hosts = [m.host for c in contenders.values() for m in c.mirrors]
    return sum(verify_mirrors(hosts, staging.corpus.expected()).values())


def cold_and_rerun(
    lab: Lab, staging: Staging, rounds: int, log: Callable[[str], None]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Case 2 (each contender once, cold) then case 3 (`rounds` no-op reruns, interleaved)."""
    contenders = _contenders(lab, staging)
    cold: dict[str, Any] = {}
    for name, contender in contenders.items():
        cold[name] = _run(contender, staging)
        log(f"  case 2 {name}: {cold[name]['seconds']:.2f} s")
    checked = _verify(contenders, staging)
    case2 = {
        "corpus": _describe(staging),
        "push_seconds": staging.push_seconds,
        "variants": cold,
        "verified_tags": checked,
        "ratios": {
            SEQUENTIAL: cold[SEQUENTIAL]["seconds"] / cold[CIP]["seconds"],
            PARALLEL: cold[PARALLEL]["seconds"] / cold[CIP]["seconds"],
        },
    }
    reruns: dict[str, list[dict[str, Any]]] = {name: [] for name in VARIANTS}
    startup_cpu: list[float] = []
    for round_ in range(rounds):
        order = list(VARIANTS) if round_ % 2 == 0 else list(reversed(VARIANTS))
        for name in order:
            reruns[name].append(_run(contenders[name], staging))
            if name == CIP:
                startup_cpu.append(_startup_cpu(contenders[CIP]))
        log(f"  case 3 round {round_ + 1}: " + ", ".join(
            f"{n} {reruns[n][-1]['seconds']:.2f} s" for n in VARIANTS
        ))  # fmt: skip
    checked = _verify(contenders, staging)
    for contender in contenders.values():
        for home in contender.homes:
            home.remove()
    summary = {
        name: {
            "seconds": spread([r["seconds"] for r in runs]),
            "rss_mb": max(r["rss_mb"] for r in runs),
            "requests_total": runs[-1]["requests_total"],
            "mirror_requests": total(runs[-1]["requests"], "mirror"),
            "mirror_writes": max(r["mirror_writes"] for r in runs),
            "staging_requests": runs[-1]["staging_requests"],
            "requests": runs[-1]["requests"],
            "runs": runs,
        }
        for name, runs in reruns.items()
    }
    cip_median = summary[CIP]["seconds"]["median"]
    cip_runs = reruns[CIP]
    run_cpu = spread([r["cpu_seconds"] for r in cip_runs]) if cip_runs else None
    start_cpu = spread(startup_cpu) if startup_cpu else None
    requests = summary[CIP]["requests_total"] if cip_runs else 0
    case3 = {
        "cip_cpu": {
            "run_seconds": run_cpu,
            "startup_seconds": start_cpu,
            "requests": requests,
            # cip's CPU for the run minus its start-up CPU, per request the registries logged.
            "ms_per_request": (
                (run_cpu["median"] - start_cpu["median"]) * 1000 / requests
                if run_cpu and start_cpu and requests
                else None
            ),
        },
        "rounds": rounds,
        "variants": summary,
        "verified_tags": checked,
        "budget_per_mirror": staging.corpus.tags + len(staging.corpus.entries),
        "ratios": {n: summary[n]["seconds"]["median"] / cip_median for n in (SEQUENTIAL, PARALLEL)},
    }
    return case2, case3


def _startup_cpu(contender: Contender) -> float:
    """CPU of `cip run --parse-only` of the same manifest: start-up, imports and validation."""
    assert contender.manifest is not None
    argv = [*cip_argv(contender.manifest, confirm=False), "--parse-only"]
    return run_measured(argv).check("cip --parse-only").cpu_seconds


def _describe(staging: Staging) -> dict[str, Any]:
    corpus = staging.corpus
    return {
        "repositories": len(corpus.entries),
        "tags": corpus.tags,
        "bytes": corpus.bytes,
        "mirrors": MIRRORS,
    }


def same_registry(staging: Staging, log: Callable[[str], None]) -> dict[str, Any]:
    """Case 5: promote `stage/*` to another prefix of the same registry; count blob bytes.

    cip must mount every blob (cross-repository mount, one POST each): no blob GET, no upload
    body. skopeo syncs the same set into a third prefix of that registry, for comparison.
    """
    lab = staging.lab
    host = lab.host
    manifest = corpora.cip_manifest(
        staging.workdir / "same.yaml",
        f"{host}/{corpora.SOURCE_PREFIX}",
        [f"{host}/same-cip"],
        staging.corpus.entries,
    )
    out: dict[str, Any] = {"corpus": _describe(staging) | {"mirrors": 1}}
    home = SkopeoHome()
    runs = {
        CIP: lambda: run_measured(cip_argv(manifest, confirm=True)).check("cip"),
        "skopeo sync": lambda: run_measured(
            sync_argv(home, staging.sync_yaml, f"{host}/same-skopeo")
        ).check("skopeo sync"),
    }
    prefixes = {CIP: "same-cip", "skopeo sync": "same-skopeo"}
    for name, run in runs.items():
        mark = lab.mark()
        measured = run()
        entries = lab.requests_since(mark)
        counts = request_counts({"registry": lab}, {"registry": mark})["registry"]
        mounts = sum(1 for e in entries if e.method == "POST" and "mount=" in e.path)
        verify_mirrors([host], staging.corpus.expected(prefixes[name]))
        out[name] = {
            "seconds": measured.seconds,
            "rss_mb": measured.rss_mb,
            "requests": counts,
            "mounts": mounts,
            "blob_gets": counts["blob_gets"],
            "blob_uploads": counts["blob_uploads"],
        }
        log(
            f"  case 5 {name}: {measured.seconds:.2f} s, {counts['total']} requests, "
            f"{counts['blob_gets']} blob GETs, {counts['blob_uploads']} upload bodies"
        )
    home.remove()
    return out
