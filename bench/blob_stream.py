"""Memory of streaming a 64 MiB blob up to and back from a lab registry, and through a layout.

Blobs must cross cip in constant memory whatever their size: this prints the peak resident set
growth during a streamed upload and a streamed download (the blob is generated from a seed in
1 MiB chunks, so the benchmark itself never holds it). Time is printed for information only.

    python3 -m bench.blob_stream [--mib 64]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import resource
import tempfile
import time
from pathlib import Path

from tests.lab import images
from tests.lab.registry_lab import running_registry

from cip.registry.client import Registry
from cip.registry.connect import create_http_registry
from cip.registry.layout import open_layout


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


async def _round_trip(registry: Registry, blob: images.Blob) -> tuple[float, float]:
    started = time.perf_counter()
    await registry.upload_blob("bench/big", blob.digest, blob.aiter(), size=blob.size)
    uploaded = time.perf_counter()
    hasher = hashlib.sha256()
    async for chunk in registry.stream_blob("bench/big", blob.digest):
        hasher.update(chunk)
    assert f"sha256:{hasher.hexdigest()}" == blob.digest
    return uploaded - started, time.perf_counter() - uploaded


async def _http(host: str, blob: images.Blob) -> tuple[float, float]:
    registry = create_http_registry(host)
    try:
        return await _round_trip(registry, blob)
    finally:
        await registry.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=64)
    args = parser.parse_args()
    blob = images.seeded_blob(64, args.mib * 1024 * 1024)
    with running_registry() as lab, tempfile.TemporaryDirectory() as folder:
        for name, run in (
            ("registry", _http(lab.host, blob)),
            ("oci layout", _round_trip(open_layout(Path(folder)), blob)),
        ):
            before = _peak_mib()
            up, down = asyncio.run(run)
            growth = _peak_mib() - before
            print(
                f"{args.mib} MiB blob via {name:10}: upload {up:5.2f} s, download {down:5.2f} s, "
                f"peak RSS growth {growth:5.1f} MiB"
            )


if __name__ == "__main__":
    main()
