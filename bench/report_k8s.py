"""The K1 and K2 sections of BENCHMARKS.md: registry.k8s.io's job, simulated, beside upstream's.

Upstream's figures are quoted from the project's public issue threads, so a reader can check
them: the promotion jobs run for an hour or more, often several (kubernetes-sigs/promo-tools
#637, #1125; kubernetes/k8s.io #4374), on allocations raised to 7 cores and 40 GiB
(promo-tools #637), with 0.7–1.4 GB resident (as measured for this project's issue 20).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

UPSTREAM = (
    "Upstream's promoter does this job in an hour or more, often several: "
    '"more than one hour, often multiple hours" (kubernetes-sigs/promo-tools#637), 2–3 hours '
    "for the postsubmit (promo-tools#1125), presubmits of about an hour (kubernetes/k8s.io#4374),"
    " on pods given 7 cores and 40 GiB (promo-tools#637), holding 0.7–1.4 GB, against Artifact "
    "Registry quotas of about 50 requests/s."
)


# What profiling K1 found (py-spy for time, tracemalloc at the peak for memory) and what was
# changed; figures from single runs of this machine while the changes were made.
FINDINGS = (
    "What profiling K1 found, and changed (figures from single runs on this machine):",
    "",
    "- `asyncio.run` formatted the whole plan: it checks its SIGINT handler with "
    "`signal.getsignal`, whose failed enum lookup builds the handler's repr, which includes the "
    "finished main task's result. A fifth of cip's samples were in dataclass `__repr__`; "
    "peak RSS 1,084 MB. The result now bypasses the task (`cli/loop.py`): 493 MB.",
    "- Each listing decodes its own copy of every digest, tag and media type, and the inventory "
    "kept them, 22 mirrors over; the wanted tags and digests were built per destination "
    "repository though a manifest's 22 mirrors want the same; a task per repository was "
    "created up front. Interned strings, one wanted set per manifest image, lazy workers: "
    "592 MB → 251 MB (main had grown meanwhile), 19.6 → 14.7 s of CPU.",
    "- With a signer configured every listing doubles (each digest has its `.sig` tag) and the "
    "facts of equal repositories were held 22 times: 481 MB. Equal facts are now held once: "
    "220–232 MB. Copying every verdict to attach a signature step of None (`replace`) cost 7 % "
    "of the CPU; it is no longer done.",
    "- On the httpx stack the HTTP client, JSON decoding of the listings and building their "
    "entries took most of cip's CPU; on aiohttp (profile below) the listings' decoding and the "
    "plan share it. Counting edges used a `Counter` per verdict; it adds into one dict now.",
    "- Once runs with a signer attested what they promote, the simulated mirrors lacked `.att` "
    "tags, so the no-op plan planned 720,478 attestation steps (a verdict copy each): it was "
    "no no-op. They now hold their attestations, as mirrors do after an attesting run, and "
    "the report counts attestation steps planned (target 0).",
)


def _met(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def _row(name: str, r: Mapping[str, Any]) -> str:
    q = r["requests"]
    return (
        f"| {name} | {r['seconds']:.1f} s | {r['cpu_seconds']:.1f} s | {r['rss_mb']:.0f} MB | "
        f"{q['destinations']:,} | {q['per_destination_repository']:.2f} | "
        f"{q['destination_heads']:,} | {q['sources']:,} | {r['simulator_cpu_seconds']:.1f} s |"
    )


def _rounds(g: Mapping[str, Any]) -> str:
    rounds = g.get("rounds") or []
    if len(rounds) < 2:
        return f"One round (load average {g.get('load_average', 0):.1f} when it started)."
    walls = ", ".join(f"{x['seconds']:.1f} s" for x in rounds)
    loads = ", ".join(f"{x['load_average']:.1f}" for x in rounds)
    return (
        f"The Google-listings row is the median of {len(rounds)} rounds by wall time (walls "
        f"{walls}; load averages {loads} when each started: the two cores are shared)."
    )


def case_k1(r: Mapping[str, Any]) -> list[str]:
    c, g = r["corpus"], r["google"]
    q = g["requests"]
    quick = " (`--quick`: every 8th subproject)" if r["quick"] else ""
    rows = [_row("Google listings, 22 regions", g)]
    if "rate_limited" in r:
        rows.append(_row("same, within 50 requests/s in all", r["rate_limited"]))
    spec = r["spec_only"]
    rows.append(
        _row(f"spec-only listings, {spec['region']} only", spec)
        + ""  # one region of 22: see the note below the table
    )
    out = [
        "## K1. No-op reconcile of registry.k8s.io",
        "",
        f"The {c['manifests']} thin manifests of the corpus{quick} ({c['edges']:,} edges into "
        f"{c['destination_repositories']:,} destination repositories on {c['hosts']} hosts; its "
        "bad digest corrected), every registry name rewritten to the synthetic registry "
        "(`bench/registry_sim.py`, one port per original host, answering from memory), every "
        "destination already holding its digests, their signatures and their promotion "
        "attestations. `cip run` is a dry run "
        "here: there is nothing "
        "to write. Requests are counted by the simulator; cip's CPU and peak RSS by GNU `time`.",
        "",
        "| run | wall | cip CPU | peak RSS | requests to destinations | per destination "
        "repository | HEADs | requests to sources | simulator CPU |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
        _rounds(g),
        "",
        f"Edges judged present: {g['edges'].get('present', 0):,} of {g['edges']['total']:,}. "
        f"Requests per destination repository: **{q['per_destination_repository']:.2f}** "
        f"(target ≤ 1.1: {_met(q['per_destination_repository'] <= 1.1)}); wall "
        f"**{g['seconds']:.1f} s** (target ≤ 30 s: {_met(g['seconds'] <= 30)}); peak RSS "
        f"**{g['rss_mb']:.0f} MB** (target ≤ 400 MB: {_met(g['rss_mb'] <= 400)}). The run has a "
        "signer configured (`--signing-key`) and every destination digest carries its `.sig` "
        "and `.att` tags, which the same listings show: signature steps planned: "
        f"{sum(g.get('signature_steps', {}).values())}, attestation steps planned: "
        f"{sum(g.get('attestation_steps', {}).values())} (target 0: "
        f"{_met(not sum(g.get('signature_steps', {}).values()) and not sum(g.get('attestation_steps', {}).values()))}).",
    ]
    if "rate_limited" in r:
        rl = r["rate_limited"]
        beyond = rl["requests"]["destination_heads"] + rl["requests"]["sources"]
        quota, per_host = rl.get("quota", 50), rl.get("per_host", 50)
        out += [
            "",
            f"Within a quota of {quota:.0f} requests/s for the whole project (`--rate-limit "
            f"{per_host:.4f}` on each mirror host, {quota:.0f}/s in all): {rl['seconds']:.0f} s "
            f"(target ≤ 5 min: {_met(rl['seconds'] <= 300)}), {beyond} requests beyond the "
            f"listings (target 0: {_met(beyond == 0)}).",
        ]
    regions = c["hosts"] - 1
    scale = c["destination_repositories"] / max(1, spec["destination_repositories"])
    out += [
        "",
        f"Without Google's `manifest` map (a registry that only speaks the Distribution spec) "
        f"every wanted tag costs a HEAD: {spec['requests']['destinations']:,} requests for the "
        f"{spec['destination_repositories']:,} repositories of one region "
        f"({spec['requests']['per_destination_repository']:.1f} per repository) in "
        f"{spec['seconds']:.1f} s; the {regions} regions together would need about "
        f"{spec['requests']['destinations'] * scale:,.0f} requests, "
        f"{spec['requests']['destinations'] * scale / 50 / 3600:.1f} hours at 50 requests/s.",
        "",
        UPSTREAM,
        "",
        *FINDINGS,
    ]
    return out


def case_k2(r: Mapping[str, Any]) -> list[str]:
    s = r["seconds"]
    outside = r["requests_outside_image"]
    return [
        "## K2. The pull-request path",
        "",
        f"The corpus committed to git, then one commit adding a version of `{r['image']}` "
        f"({r['subproject']}, {r['destinations']} mirrors); `cip run --thin-manifest-dir … "
        f"--diff-base HEAD^` (a dry run, as a presubmit runs it) against the simulator, "
        f"{r['rounds']} rounds, the whole process timed.",
        "",
        "| median | min–max | cip CPU | peak RSS | edges | requests | repositories |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| {s['median']:.2f} s | {s['min']:.2f}–{s['max']:.2f} s | {r['cpu_seconds']:.2f} s | "
        f"{r['rss_mb']:.0f} MB | {r['edges']['total']:,} ({r['edges'].get('copy', 0)} to copy) |"
        f" {r['requests']} | {r['repositories_requested']} |",
        "",
        f"Whole process ≤ 5 s: {_met(s['median'] <= 5)}; requests only for that image's "
        f"repositories (its mirrors and its staging repository): {_met(not outside)}"
        + (f" (also asked: {', '.join(outside[:5])})" if outside else "")
        + ". Upstream's presubmit for the same change ran about an hour (kubernetes/k8s.io#4374).",
    ]
