"""`cip run --max-image-size`: copies of too-large images are held back with a verdict."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.e2e.conftest import push_images, run_cip, writes
from tests.e2e.test_dry_run import manifest
from tests.lab.images import oci_image, oci_index
from tests.lab.registry_lab import LabRegistry

MIB = 1024 * 1024


def test_images_above_the_limit_are_held_back_and_the_rest_is_promoted(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging, mirror = registry_factory(), registry_factory()
    big = oci_image(60, large_layer=MIB + MIB // 2)  # 1.5 MiB and a little
    small = oci_index(61)  # two platforms of a few KiB
    push_images(staging, [("big", big, "1"), ("small", small, "1")])
    path = manifest(
        tmp_path / "m.yaml",
        staging.host,
        [mirror.host],
        f'- name: big\n  dmap:\n    "{big.digest}": ["1"]\n'
        f'- name: small\n  dmap:\n    "{small.digest}": ["1"]\n',
    )
    mark = mirror.mark()
    done = run_cip("run", "--manifest", str(path), "--max-image-size", "1", "--confirm")
    assert done.returncode == 1, done.stderr
    assert f"too large big@{big.digest} ({path}:8:5): 1.5 MiB compressed" in done.stdout
    assert "above --max-image-size 1 MiB: held back" in done.stdout
    assert "too-large 1" in done.stdout and "partially promoted" in done.stdout
    written = writes(mirror, mark)
    assert not any("/big/" in line for line in written), written
    assert any(line.startswith("PUT /v2/small/manifests/1") for line in written), written

    document = json.loads(
        run_cip("run", "--manifest", str(path), "--max-image-size=1", "--output=json").stdout
    )
    assert document["edges"]["too-large"] == 1 and document["exit_code"] == 1
    [held] = [i for i in document["images"] if i["image"] == "big"]
    [entry] = held["destinations"]["too-large"]
    assert entry["registry"] == mirror.host and "above --max-image-size 1 MiB" in entry["error"]


def test_without_the_flag_nothing_is_measured_and_a_large_limit_passes(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging, mirror = registry_factory(), registry_factory()
    big = oci_image(62, large_layer=MIB + 1)
    push_images(staging, [("big", big, "1")])
    path = manifest(
        tmp_path / "m.yaml",
        staging.host,
        [mirror.host],
        f'- name: big\n  dmap:\n    "{big.digest}": ["1"]\n',
    )
    for extra in ([], ["--max-image-size", "2"]):
        done = run_cip("run", "--manifest", str(path), *extra)
        assert done.returncode == 0, done.stderr
        assert "too-large" not in done.stdout and "copy 1" in done.stdout
    refused = run_cip("run", "--manifest", str(path), "--max-image-size", "0")
    assert refused.returncode == 2 and "--max-image-size" in refused.stderr
