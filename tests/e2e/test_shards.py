"""Shards as separate cip processes against real registries.

Every process gets the same manifests and its own `--shard-index` (or JOB_COMPLETION_INDEX, as
Kubernetes sets it). Together they promote every edge; the registries' access logs show no
manifest written twice, so no edge was written by two shards; a shard killed mid-run and rerun
converges without touching the others' work.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from tests.cli import check_json_output
from tests.e2e.conftest import push_images, run_cip
from tests.e2e.test_crash_safety import check
from tests.e2e.test_dry_run import manifest
from tests.lab.images import Image, oci_image, oci_index
from tests.lab.registry_lab import LabRegistry

TAGS = ("1.0", "latest")


def catalog(count: int, layer_size: int) -> dict[str, Image]:
    images = {
        f"img{i:02d}": oci_image(700 + i, layers=3, layer_size=layer_size) for i in range(count)
    }
    images["pause"] = oci_index(790)  # listed again under a second name below
    return images


def staged(images: dict[str, Image]) -> list[tuple[str, Image, str | None]]:
    pushed: list[tuple[str, Image, str | None]] = [
        (f"stage/{n}", i, "src") for n, i in images.items()
    ]
    return [*pushed, ("stage/pause-alias", images["pause"], "src")]


def promoter_manifest(
    path: Path, staging: LabRegistry, mirrors: Sequence[LabRegistry], images: dict[str, Image]
) -> Path:
    entries = [(name, image) for name, image in images.items()]
    entries.append(("pause-alias", images["pause"]))  # one digest, two names: one component
    text = "".join(
        f'- name: {name}\n  dmap:\n    "{image.digest}": ["{TAGS[0]}", "{TAGS[1]}"]\n'
        for name, image in entries
    )
    return manifest(path, f"{staging.host}/stage", [f"{m.host}/prod" for m in mirrors], text)


def start_shard(
    path: Path, index: int, count: int, *, by_env: bool = False
) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "cip.cli", "run", "--manifest", str(path), "--confirm"]
    argv += ["--output", "json", "--shard-count", str(count)]
    env = dict(os.environ)
    if by_env:
        env["JOB_COMPLETION_INDEX"] = str(index)
    else:
        argv += ["--shard-index", str(index)]
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def manifest_puts(mirrors: Sequence[LabRegistry]) -> Counter[str]:
    return Counter(
        f"{m.host}{e.path}"
        for m in mirrors
        for e in m.requests_since(0)
        if e.method == "PUT" and "/manifests/" in e.path
    )


def all_present(path: Path, edges: int) -> None:
    done = run_cip("run", "--manifest", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Edges {edges}: copy 0, add-tag 0, present {edges}," in done.stdout


def test_parallel_shards_promote_every_edge_once(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging = registry_factory()
    mirrors = [registry_factory(), registry_factory()]
    images = catalog(10, 2048)
    push_images(staging, staged(images))
    path = promoter_manifest(tmp_path / "m.yaml", staging, mirrors, images)
    count = 3
    running = [start_shard(path, i, count, by_env=i == 2) for i in range(count)]
    reports, files = [], []
    for index, process in enumerate(running):
        out, err = process.communicate(timeout=240)
        assert process.returncode == 0, out + err
        reports.append(check_json_output(out))
        files.append(tmp_path / f"shard-{index}.json")
        files[-1].write_text(out)
    owned = [{(e["image"], e["digest"]) for e in r["images"]} for r in reports]
    assert [r["shard"] for r in reports] == [{"index": i, "count": count} for i in range(count)]
    everything = {(n, i.digest) for n, i in images.items()} | {
        ("pause-alias", images["pause"].digest)
    }
    assert set().union(*owned) == everything
    assert sum(len(o) for o in owned) == len(everything)  # disjoint
    assert sum(1 for o in owned if o) >= 2  # the work really was split
    holder = [o for o in owned if ("pause", images["pause"].digest) in o]
    assert ("pause-alias", images["pause"].digest) in holder[0]
    puts = manifest_puts(mirrors)
    assert puts and set(puts.values()) == {1}, [p for p, n in puts.items() if n > 1]
    tag_puts = [p for p in puts if p.rsplit("/", 1)[1] in TAGS]
    assert len(tag_puts) == len(everything) * len(TAGS) * len(mirrors)
    all_present(path, len(tag_puts))
    verified = run_cip("verify", "--manifest", str(path))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.strip() == (
        f"Verified {len(tag_puts)} edges: {len(tag_puts)} in place, 0 not in place "
        "(missing 0, tag-missing 0, tag-elsewhere 0, unreadable 0)"
    )
    merged = run_cip("verify", "--merge", *map(str, files), "--output=json")
    assert merged.returncode == 0, merged.stderr
    document = check_json_output(merged.stdout)
    assert document["edges"]["copy"] == len(tag_puts)
    assert document["promotion"] == "promoted"
    assert len(document["images"]) == len(everything)


def test_a_killed_shard_rerun_converges(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging = registry_factory()
    mirrors = [registry_factory(), registry_factory()]
    images = catalog(16, 600_000)
    push_images(staging, staged(images))
    path = promoter_manifest(tmp_path / "m.yaml", staging, mirrors, images)
    count, victim = 2, 1
    other = start_shard(path, 0, count)
    _, err = other.communicate(timeout=240)
    assert other.returncode == 0, err
    process = start_shard(path, victim, count)
    deadline = time.monotonic() + 120
    while not any(
        e.method == "PUT" for m in mirrors for e in m.entries()[-50:] if "blobs" in e.path
    ):
        assert process.poll() is None, "the shard finished before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.communicate()
    for mirror in mirrors:
        assert check(mirror) == [], f"incomplete tags in {mirror.host}"
    interrupted = run_cip("run", "--manifest", str(path))
    assert "copy 0," not in interrupted.stdout, "nothing was left for the rerun"
    rerun = start_shard(path, victim, count)
    _, err = rerun.communicate(timeout=240)
    assert rerun.returncode == 0, err
    puts = manifest_puts(mirrors)
    tag_puts = {p: n for p, n in puts.items() if p.rsplit("/", 1)[1] in TAGS}
    assert set(tag_puts.values()) == {1}  # no tag written twice, across kill and rerun
    all_present(path, (len(images) + 1) * len(TAGS) * len(mirrors))
    for mirror in mirrors:
        assert check(mirror) == []
