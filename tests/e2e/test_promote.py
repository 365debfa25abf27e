"""`cip run --confirm` against real registries: digests preserved, order, mounts, isolation."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from cip.promote.executor import execute
from cip.promote.pipeline import load_and_validate, plan_against_registries
from cip.registry.connect import open_http_registry
from cip.registry.pool import RegistryPool
from tests.e2e.conftest import push_images, run_cip, writes
from tests.e2e.test_dry_run import manifest
from tests.lab.images import (
    Image,
    artifact,
    docker_image,
    docker_manifest_list,
    oci_image,
    oci_index,
    push,
)
from tests.lab.registry_lab import LabRegistry
from tests.lab.tamper import Answer, flip_last_byte, tampering_proxy


def skopeo_raw(reference: str) -> bytes:
    done = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{reference}"],
        capture_output=True,
        check=True,
    )
    return done.stdout


def dmap(name: str, image: Image, *tags: str) -> str:
    listed = ", ".join(f'"{t}"' for t in tags)
    return f'- name: {name}\n  dmap:\n    "{image.digest}": [{listed}]\n'


def test_promotion_to_three_mirrors_preserves_digests_and_reruns_write_nothing(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging = registry_factory()
    mirrors = [registry_factory() for _ in range(3)]
    big = oci_image(50, large_layer=64 * 1024 * 1024)
    catalog = {
        "plain": oci_image(51),
        "docker": docker_image(52),
        "multi": oci_index(53),
        "list": docker_manifest_list(54),
        "big": big,
        "chart": artifact(55, "application/vnd.cncf.helm.config.v1+json"),
    }
    push_images(staging, [(f"stage/{n}", image, "src") for n, image in catalog.items()])
    images = "".join(dmap(name, image, "1.0", "stable") for name, image in catalog.items())
    path = manifest(
        tmp_path / "m.yaml", f"{staging.host}/stage", [f"{m.host}/prod" for m in mirrors], images
    )
    mark = staging.mark()
    done = run_cip("run", "--manifest", str(path), "--confirm")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(promoted)" in done.stdout
    # The 64 MiB layer is read from staging once and streamed to the three mirrors together.
    big_layer = max(big.blobs, key=lambda b: b.size).digest
    reads = [e for e in staging.requests_since(mark) if e.method == "GET" and big_layer in e.path]
    assert len(reads) == 1
    assert "copy 36," in done.stdout  # 6 images x 2 tags x 3 mirrors
    for mirror in mirrors:
        for name, image in catalog.items():
            for tag in ("1.0", "stable"):
                raw = skopeo_raw(f"{mirror.host}/prod/{name}:{tag}")
                assert "sha256:" + hashlib.sha256(raw).hexdigest() == image.digest

    marks = {m.host: m.mark() for m in (staging, *mirrors)}
    again = run_cip("run", "--manifest", str(path), "--confirm")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "present 36" in again.stdout
    assert "(nothing promoted)" in again.stdout  # nothing needed writing: no claim of a promotion
    for lab in (staging, *mirrors):
        assert writes(lab, marks[lab.host]) == []


def test_same_registry_promotion_mounts_and_streams_no_blob(
    lab_registry: LabRegistry, tmp_path: Path
) -> None:
    images = {"a": oci_image(60, layer_size=500_000), "b": oci_index(61)}
    push_images(lab_registry, [(f"staging/{n}", i, "v1") for n, i in images.items()])
    path = manifest(
        tmp_path / "m.yaml",
        f"{lab_registry.host}/staging",
        [f"{lab_registry.host}/prod"],
        "".join(dmap(n, i, "v1") for n, i in images.items()),
    )
    mark = lab_registry.mark()
    done = run_cip("run", "--manifest", str(path), "--confirm")
    assert done.returncode == 0, done.stdout + done.stderr
    requests = lab_registry.requests_since(mark)
    blob_reads = [e for e in requests if e.method == "GET" and "/blobs/" in e.path]
    assert blob_reads == []
    mounts = [e for e in requests if e.method == "POST" and "mount=" in e.path]
    assert mounts and all(e.status == 201 for e in mounts)
    assert not [e for e in requests if e.method == "PATCH"]
    for name, image in images.items():
        raw = skopeo_raw(f"{lab_registry.host}/prod/{name}:v1")
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == image.digest


def test_tag_written_by_someone_else_after_planning_is_not_moved(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging, mirror = registry_factory(), registry_factory()
    ours, theirs = oci_image(70), oci_image(71)
    push_images(staging, [("app", ours, "1")])
    path = manifest(tmp_path / "m.yaml", staging.host, [mirror.host], dmap("app", ours, "1", "x"))

    async def scenario() -> None:
        validated = load_and_validate([str(path)], [])
        async with RegistryPool() as pool:
            planned = await plan_against_registries(validated.groups, pool)
            async with open_http_registry(mirror.host) as other_writer:  # after planning
                await push(other_writer, "app", theirs, "1")
            report = await execute(planned, pool)
        [result] = report.results
        assert result.copied
        assert result.tags_written == ()  # not "x" either: no tag points at a refused release
        assert [(m.tag, m.current) for m in result.refused] == [("1", theirs.digest)]
        [verdict] = report.outcome_plan().verdicts
        assert verdict.copied_untagged and verdict.tags_to_add == ("x",)
        assert report.outcome_plan().has_problems

    asyncio.run(scenario())
    raw = skopeo_raw(f"{mirror.host}/app:1")
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == theirs.digest


def test_source_serving_wrong_bytes_is_refused_and_other_images_promoted(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging, mirror = registry_factory(), registry_factory()
    bad, good = oci_image(80, layer_size=200_000), oci_image(81)
    push_images(staging, [("bad", bad, "1"), ("good", good, "1")])
    bad_layer = bad.blobs[-1].digest

    def tamper(answer: Answer) -> Answer:
        if answer.request_path.endswith(bad_layer) and answer.status == 200:
            answer.body = flip_last_byte(answer.body)
        return answer

    with tampering_proxy(staging.host, tamper) as proxy:
        path = manifest(
            tmp_path / "m.yaml",
            proxy,
            [mirror.host],
            dmap("bad", bad, "1") + dmap("good", good, "1"),
        )
        mark = mirror.mark()
        done = run_cip("run", "--manifest", str(path), "--confirm", "--output", "json")
    assert done.returncode == 1, done.stderr
    document = json.loads(done.stdout)
    by_image = {i["image"]: i["destinations"] for i in document["images"]}
    [failure] = by_image["bad"]["failed"]
    assert "hashes to" in failure["error"] or "digest" in failure["error"]
    good = {
        "registry": mirror.host,
        "tags": ["1"],
        "tag_moves": [],
        "error": None,
        "signature": None,
        "vulnerability": None,
        "attestation": None,
    }
    assert {action: entries for action, entries in by_image["good"].items() if entries} == {
        "copy": [good]
    }
    assert document["promotion"] == "partially promoted"
    written = writes(mirror, mark)
    assert not [w for w in written if w.startswith("PUT /v2/bad/manifests/")]
    assert "PUT /v2/good/manifests/1" in written


def test_wrong_bytes_in_a_shared_large_blob_fail_every_mirror_without_hanging(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging, mirror_a, mirror_b = registry_factory(), registry_factory(), registry_factory()
    bad = oci_image(90, layers=1, layer_size=3_000_000)  # above the small-blob size: streamed
    push_images(staging, [("bad", bad, "1")])
    layer = bad.blobs[-1].digest

    def tamper(answer: Answer) -> Answer:
        if answer.request_path.endswith(layer) and answer.request_method == "GET":
            answer.body = flip_last_byte(answer.body)
        return answer

    with tampering_proxy(staging.host, tamper) as proxy:
        path = manifest(
            tmp_path / "m.yaml", proxy, [mirror_a.host, mirror_b.host], dmap("bad", bad, "1")
        )
        done = run_cip("run", "--manifest", str(path), "--confirm", "--output", "json")
    assert done.returncode == 1, done.stderr
    document = json.loads(done.stdout)
    assert document["promotion"] == "nothing promoted"  # every write failed
    failed = document["images"][0]["destinations"]["failed"]
    assert sorted(f["registry"] for f in failed) == sorted([mirror_a.host, mirror_b.host])
    for mirror in (mirror_a, mirror_b):
        assert not [w for w in writes(mirror, 0) if "/manifests/" in w]


def test_a_large_blob_crosses_once_per_mirror_host_and_is_mounted_elsewhere_on_it(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging, mirror = registry_factory(), registry_factory()
    image = oci_image(95, layers=1, layer_size=3_000_000)
    layer = image.blobs[-1].digest
    names = [f"team{i}/app" for i in range(12)]  # more repositories than connections per host
    push_images(staging, [(name, image, "1") for name in names])
    path = manifest(
        tmp_path / "m.yaml",
        staging.host,
        [mirror.host],
        "".join(dmap(n, image, "1") for n in names),
    )
    marks = staging.mark(), mirror.mark()
    done = run_cip("run", "--manifest", str(path), "--confirm")
    assert done.returncode == 0, done.stdout + done.stderr
    source_reads = [e for e in staging.requests_since(marks[0]) if layer in e.path]
    uploads = [
        e
        for e in mirror.requests_since(marks[1])
        if e.method == "PUT" and "/blobs/uploads/" in e.path and layer[7:] in e.path
    ]
    mounts = [
        e for e in mirror.requests_since(marks[1]) if "mount=" in e.path and layer[7:] in e.path
    ]
    assert len(source_reads) == 1
    assert len(uploads) == 1
    assert len(mounts) == len(names) - 1 and all(m.status == 201 for m in mounts)
