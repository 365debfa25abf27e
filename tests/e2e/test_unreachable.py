"""A mirror that is down: one problem line for its host, every edge's error still in the JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.e2e.conftest import push_images, run_cip
from tests.e2e.test_dry_run import manifest
from tests.e2e.test_interrupts import SlowProxy
from tests.lab.images import oci_image
from tests.lab.registry_lab import LabRegistry

# A stopped registry is down for good: short patience keeps the test fast (default 5m).
PATIENCE = ("--retry-timeout=2s", "--retry-max-backoff=500ms")


def test_a_mirror_that_is_down_is_one_problem_line_per_host(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging, mirror_up, mirror_down = registry_factory(), registry_factory(), registry_factory()
    catalog = {f"img{i}": oci_image(700 + i) for i in range(4)}
    push_images(staging, [(name, image, "src") for name, image in catalog.items()])
    images = "".join(
        f'- name: {name}\n  dmap:\n    "{image.digest}": ["1.0"]\n'
        for name, image in catalog.items()
    )
    path = manifest(tmp_path / "m.yaml", staging.host, [mirror_up.host, mirror_down.host], images)
    mirror_down.stop()

    done = run_cip("run", "--manifest", str(path), "--confirm", *PATIENCE)
    assert done.returncode == 1, done.stderr
    problems = done.stdout.partition("Images:")[0].splitlines()
    assert problems == [
        "Problems (1):",
        f"  failed    {mirror_down.host} unreachable (connection refused): "
        "4 destinations not promoted",
        "",
    ], done.stdout
    assert "partially promoted" in done.stdout

    as_json = run_cip("run", "--manifest", str(path), "--confirm", "--output=json", *PATIENCE)
    assert as_json.returncode == 1, as_json.stderr
    document = json.loads(as_json.stdout)
    failed = [
        (item["image"], entry)
        for item in document["images"]
        for entry in item["destinations"]["failed"]
    ]
    assert sorted(image for image, _ in failed) == sorted(catalog)
    for _, entry in failed:
        assert entry["registry"] == mirror_down.host
        assert "connect" in entry["error"].lower(), entry  # each edge's own error, unabridged
    assert document["edges"]["present"] == len(catalog)  # the first run promoted mirror_up


def test_a_mirror_that_goes_down_during_the_promotion_is_one_problem_line(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    """The mirror answers the plan, then stops: the first failures open its circuit, and the
    requests the broken circuit then fails at once are grouped under the host like the others."""
    staging, mirror = registry_factory(), registry_factory()
    catalog = {f"img{i}": oci_image(720 + i) for i in range(4)}
    push_images(staging, [(name, image, "src") for name, image in catalog.items()])
    images = "".join(
        f'- name: {name}\n  dmap:\n    "{image.digest}": ["1.0"]\n'
        for name, image in catalog.items()
    )
    # Staging answers slowly, so every copy is still reading it when the mirror stops.
    with SlowProxy(staging.host, delay=1.0).running() as proxy:
        path = manifest(tmp_path / "m.yaml", proxy.host, [mirror.host], images)
        process = subprocess.Popen(
            [sys.executable, "-m", "cip.cli", "run", "--manifest", str(path), "--confirm",
             *PATIENCE],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert process.stderr is not None
        for line in process.stderr:
            if line.startswith("phase validate"):
                break
        mirror.stop()
        stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 1, stderr
    problems = stdout.partition("Images:")[0].splitlines()
    assert problems == [
        "Problems (1):",
        f"  failed    {mirror.host} unreachable (connection refused): 4 destinations not promoted",
        "",
    ], stdout
