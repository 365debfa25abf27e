"""`cip run --confirm` through registries that fail for a while or for good, via a fault proxy.

An outage shorter than `--retry-timeout` is waited out and the promotion completes; a mirror
that stays down fails its edges once the patience is spent, with few requests (its circuit lets
one trial through at a time), while the other mirror is promoted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.e2e.conftest import push_images, run_cip
from tests.e2e.test_dry_run import manifest
from tests.lab.fault_proxy import Outage, threaded_fault_proxy
from tests.lab.images import oci_image
from tests.lab.registry_lab import LabRegistry

FAST = ("--retry-max-backoff=200ms",)


def _dmaps(count: int) -> tuple[list[tuple[str, object, str]], str]:
    pushed, lines = [], ""
    for i in range(count):
        image = oci_image(80 + i)
        pushed.append((f"staging/app{i}", image, "1"))
        lines += f'- name: app{i}\n  dmap:\n    "{image.digest}": ["1"]\n'
    return pushed, lines


def test_an_outage_shorter_than_the_patience_is_waited_out(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging, mirror = registry_factory(), registry_factory()
    pushed, dmaps = _dmaps(4)
    push_images(staging, pushed)  # type: ignore[arg-type]
    with threaded_fault_proxy(staging.host, Outage(2.0)) as proxy:
        path = manifest(
            tmp_path / "m.yaml", f"{proxy.host}/staging", [f"{mirror.host}/prod"], dmaps
        )
        done = run_cip(
            "run", "--manifest", str(path), "--confirm", "--output=json",
            "--retry-timeout=60s", *FAST,
        )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads(done.stdout)
    assert sum(document["requests"][proxy.host].get(k, 0) for k in ("GET 503", "HEAD 503")) >= 1
    assert any(r.status == 503 for r in proxy.records)
    assert "Traceback" not in done.stderr


def test_a_mirror_that_stays_down_fails_its_edges_once(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging, good, bad = registry_factory(), registry_factory(), registry_factory()
    pushed, dmaps = _dmaps(8)
    push_images(staging, pushed)  # type: ignore[arg-type]
    with threaded_fault_proxy(bad.host, Outage(3600)) as proxy:
        path = manifest(
            tmp_path / "m.yaml",
            f"{staging.host}/staging",
            [f"{good.host}/prod", f"{proxy.host}/prod"],
            dmaps,
        )
        done = run_cip("run", "--manifest", str(path), "--confirm", "--retry-timeout=2s", *FAST)
    assert done.returncode == 1, done.stdout + done.stderr
    failed = [line for line in done.stdout.splitlines() if line.strip().startswith("failed")]
    assert len(failed) == 8 and all(proxy.host in line for line in failed)
    assert "kept failing" in done.stdout
    assert "copy 8," in done.stdout  # the good mirror was promoted all the same
    # Eight edges with two seconds of patience each, retrying every ~0.1 s, would send ~160
    # requests; the circuit lets the first wave and then one trial at a time through.
    assert len(proxy.records) <= 8 + 2.0 / 0.05
    assert "Traceback" not in done.stderr


def test_a_registry_name_that_does_not_resolve_is_not_retried(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging = registry_factory()
    pushed, dmaps = _dmaps(1)
    push_images(staging, pushed)  # type: ignore[arg-type]
    missing = "registry.invalid:5000"  # RFC 2606: .invalid never resolves
    path = manifest(tmp_path / "m.yaml", f"{staging.host}/staging", [f"{missing}/prod"], dmaps)
    done = run_cip("run", "--manifest", str(path), "--output=json", "--retry-timeout=60s", *FAST)
    assert done.returncode == 1, done.stdout + done.stderr
    attempts = json.loads(done.stdout)["requests"][missing]
    # A typo is not an outage: one attempt, not a minute of retries.
    assert sum(attempts.values()) == 1, attempts
    assert "Traceback" not in done.stderr
