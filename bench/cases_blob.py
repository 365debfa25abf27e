"""Case 4: one large blob between two registries on different ports.

Three contenders move the same blob from the source registry into a fresh destination registry,
round after round in rotating order: `cip run --confirm` of an image whose only layer is that
blob, `skopeo copy` of the same image, and the raw limit, a `curl` GET piped into a `curl`
upload (POST for a session, then one PUT with the streamed body: Distribution 2.8.2 ignores a
single `POST ?digest=`). cip and skopeo also write a small config, a manifest and a tag;
that is their job and a few milliseconds. Each destination is stopped and deleted after its
round, so disk use stays at one copy per contender.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.lab.images import Image, oci_image, push
from tests.lab.registry_lab import LabRegistry

from bench.corpus import MIB, Entry, cip_manifest
from bench.lab import Lab, Measured, cip_argv, marks_of, request_counts, run_measured, spread
from bench.profile import profile_cip
from bench.skopeo import SkopeoHome, copy_argv
from cip.registry.connect import open_http_registry

CIP, SKOPEO, RAW = "cip", "skopeo copy", "raw curl GET | curl PUT"
VARIANTS = (CIP, SKOPEO, RAW)
REPOSITORY = "big/app"

_RAW_SCRIPT = """set -euo pipefail
location=$(curl -sS -f -o /dev/null -w '%{header_json}' -X POST -H 'Content-Length: 0' \\
    "$DST/v2/raw/app/blobs/uploads/" | python3 -c 'import json,sys; print(json.load(sys.stdin)["location"][0])')
case "$location" in http*) ;; *) location="$DST$location" ;; esac
curl -sS -f "$SRC/v2/big/app/blobs/$DIGEST" \\
  | curl -sS -f -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' -T - \\
    "$location&digest=$DIGEST"
"""


def _raw_argv(src: LabRegistry, dst: LabRegistry, digest: str) -> list[str]:
    return [
        "env", f"SRC={src.url}", f"DST={dst.url}", f"DIGEST={digest}",
        "bash", "-c", _RAW_SCRIPT,
    ]  # fmt: skip


async def _push(host: str, size: int) -> Image:
    image = oci_image(4242, layers=0, large_layer=size)
    async with open_http_registry(host) as client:
        await push(client, REPOSITORY, image, "v1")
    return image


def _blob_received(dst: LabRegistry, digest: str) -> bool:
    return any((dst.root / "storage").rglob(f"blobs/sha256/{digest[7:9]}/{digest[7:]}/data"))


def large_blob(
    lab: Lab,
    workdir: Path,
    size_mib: int,
    rounds: int,
    log: Callable[[str], None],
    *,
    profile_missed: bool = True,
) -> dict[str, Any]:
    source = lab.registry("blob-source")
    image = asyncio.run(_push(source.host, size_mib * MIB))
    blob_digest = image.blobs[-1].digest
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in VARIANTS}
    for round_ in range(rounds):
        order = VARIANTS[round_ % 3 :] + VARIANTS[: round_ % 3]
        for name in order:
            dst = lab.registry("blob-dest")
            labs = {"source": source, "destination": dst}
            marks = marks_of(labs)
            measured = _one(name, source, dst, workdir, image)
            counts = request_counts(labs, marks)
            if not _blob_received(dst, blob_digest):
                raise AssertionError(f"{name}: blob {blob_digest} missing at {dst.host}")
            runs[name].append(
                {"seconds": measured.seconds, "rss_mb": measured.rss_mb, "requests": counts}
            )
            lab.discard(dst)
        log(f"  case 4 round {round_ + 1}: " + ", ".join(
            f"{n} {runs[n][-1]['seconds']:.2f} s" for n in VARIANTS
        ))  # fmt: skip
    summary = {
        name: {
            "seconds": spread([r["seconds"] for r in items]),
            "rss_mb": max(r["rss_mb"] for r in items),
            "requests": items[-1]["requests"],
            "runs": items,
        }
        for name, items in runs.items()
    }
    med = {name: s["seconds"]["median"] for name, s in summary.items()}
    ratios = {"cip/skopeo": med[CIP] / med[SKOPEO], "cip/raw": med[CIP] / med[RAW]}
    profile = None
    if profile_missed and (ratios["cip/skopeo"] > 1 or ratios["cip/raw"] > 1.15):
        log("  profiling cip's copy of the blob (target missed)")
        dst = lab.registry("blob-dest")
        path = cip_manifest(
            workdir / "blob.yaml", f"{source.host}/big", [f"{dst.host}/big"],
            [Entry("app", ((image, "v1"),))],
        )  # fmt: skip
        profile = profile_cip(path, confirm=True)
        lab.discard(dst)
    lab.discard(source)
    return {
        "profile": profile,
        "size_mib": size_mib,
        "rounds": rounds,
        "variants": summary,
        "mb_per_s": {name: size_mib * MIB / 1e6 / m for name, m in med.items()},
        "ratios": ratios,
    }


def _one(
    name: str,
    source: LabRegistry,
    dst: LabRegistry,
    workdir: Path,
    image: Image,
) -> Measured:
    if name == CIP:
        entry = Entry("app", ((image, "v1"),))
        path = cip_manifest(
            workdir / "blob.yaml", f"{source.host}/big", [f"{dst.host}/big"], [entry]
        )
        return run_measured(cip_argv(path, confirm=True)).check("cip")
    if name == SKOPEO:
        home = SkopeoHome()
        try:
            argv = copy_argv(home, f"{source.host}/{REPOSITORY}:v1", f"{dst.host}/{REPOSITORY}:v1")
            return run_measured(argv).check("skopeo copy")
        finally:
            home.remove()
    return run_measured(_raw_argv(source, dst, image.blobs[-1].digest)).check("raw curl")
