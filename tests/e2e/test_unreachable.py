"""A mirror that is down: one problem line for its host, every edge's error still in the JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.e2e.conftest import push_images, run_cip
from tests.e2e.test_dry_run import manifest
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
