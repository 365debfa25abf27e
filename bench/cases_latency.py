"""Case 9: cold promotion into one mirror, on loopback and with 20 ms of round-trip latency.

Real registries are not on loopback: every request waits a round trip, and a client that does
one thing at a time pays it thousands of times. The same corpus as case 2 is promoted from the
staging registry into one fresh mirror per contender, once directly and once with every
connection (to staging and to the mirror) passing a latency proxy (`bench/latency_proxy.py`)
that adds `ONE_WAY_MS` each way. cip runs first each time; every mirror is checked tag by tag.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench import corpus as corpora
from bench.cases_promote import Staging
from bench.lab import Lab, cip_argv, marks_of, request_counts, run_measured, total, verify_mirrors
from bench.latency_proxy import LatencyProxy
from bench.skopeo import SkopeoHome, sync_argv

CIP, SKOPEO = "cip", "skopeo sync"
ONE_WAY_MS = 10.0  # 20 ms round trip


def _one(
    lab: Lab, staging: Staging, name: str, one_way_ms: float | None, log: Callable[[str], None]
) -> dict[str, Any]:
    mirror = lab.registry(f"one-{name.split()[0]}-{'far' if one_way_ms else 'near'}")
    proxies: list[LatencyProxy] = []
    try:
        source, target = staging.lab.host, mirror.host
        if one_way_ms:
            proxies = [LatencyProxy.start(h, one_way_ms) for h in (source, target)]
            source, target = proxies[0].host, proxies[1].host
        labs = {"staging": staging.lab, "mirror1": mirror}
        marks = marks_of(labs)
        home: SkopeoHome | None = None
        tag = "far" if one_way_ms else "near"
        if name == CIP:
            manifest = corpora.cip_manifest(
                staging.workdir / f"one-{tag}.yaml",
                f"{source}/{corpora.SOURCE_PREFIX}",
                [f"{target}/{corpora.MIRROR_PREFIX}"],
                staging.corpus.entries,
            )
            measured = run_measured(cip_argv(manifest, confirm=True)).check("cip")
        else:
            home = SkopeoHome()
            sync_yaml = corpora.skopeo_sync_yaml(
                staging.workdir / f"sync-{tag}.yaml",
                source,
                staging.corpus,
                corpora.SOURCE_PREFIX,
            )
            argv = sync_argv(home, sync_yaml, f"{target}/{corpora.MIRROR_PREFIX}")
            measured = run_measured(argv).check("skopeo sync")
        counts = request_counts(labs, marks)
        if home is not None:
            home.remove()
        checked = sum(verify_mirrors([mirror.host], staging.corpus.expected()).values())
        log(f"  case 9 {name} ({tag}): {measured.seconds:.2f} s, {total(counts):,} requests")
        return {
            "seconds": measured.seconds,
            "cpu_seconds": measured.cpu_seconds,
            "rss_mb": measured.rss_mb,
            "requests": counts,
            "requests_total": total(counts),
            "verified_tags": checked,
        }
    finally:
        for proxy in proxies:
            proxy.stop()
        lab.discard(mirror)


def one_mirror(lab: Lab, staging: Staging, log: Callable[[str], None]) -> dict[str, Any]:
    out: dict[str, Any] = {"one_way_ms": ONE_WAY_MS}
    for label, delay in (("loopback", None), ("20 ms round trip", ONE_WAY_MS)):
        runs = {name: _one(lab, staging, name, delay, log) for name in (CIP, SKOPEO)}
        out[label] = {
            "variants": runs,
            "ratio": runs[SKOPEO]["seconds"] / runs[CIP]["seconds"],
        }
    return out
