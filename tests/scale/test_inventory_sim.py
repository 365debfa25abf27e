"""What a plan costs in requests, through the CLI, against the synthetic registry.

On Google's registries (tags/list with the `manifest` map) a destination repository costs one
request whatever it holds; on a spec-only registry, one listing plus a HEAD per wanted tag and
per wanted digest no tag accounts for. Sources are read only for what a destination lacks.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from bench.registry_sim import running_simulator
from bench.sim_content import SimContent, SimHost

from tests.cli import run_cip

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64


def _manifest(path: Path, addresses: dict[str, str]) -> Path:
    body = {
        "registries": [
            {"name": f"{addresses['staging']}/stage", "src": True},
            {"name": f"{addresses['east']}/prod"},
            {"name": f"{addresses['west']}/prod"},
        ],
        "images": [{"name": "app", "dmap": {D1: ["v1"], D2: ["v2", "2"], D3: ["v3"]}}],
    }
    path.write_text(yaml.safe_dump(body))
    return path


@pytest.mark.parametrize("google", [True, False], ids=["google-listing", "spec-only"])
def test_dry_run_reads_one_listing_per_repository_on_google(tmp_path: Path, google: bool) -> None:
    staging, prod = SimContent(), SimContent()
    for digest, tags in ((D1, ["v1"]), (D2, ["v2", "2"]), (D3, ["v3"])):
        staging.add("stage/app", digest, tags)
    prod.add("prod/app", D1, ["v1"])
    prod.add("prod/app", D2, ["v2", "2"])
    hosts = [
        SimHost("staging", staging, google=google),
        SimHost("east", prod, google=google),
        SimHost("west", prod, google=google),
    ]
    with running_simulator(hosts) as sim:
        manifest = _manifest(tmp_path / "promoter.yaml", sim.addresses)
        done = run_cip("run", "--manifest", str(manifest), "--output", "json")
        log = sim.log()
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["edges"]["present"] == 6 and report["edges"]["copy"] == 2
    per_destination = 1 if google else 1 + 3 + 1  # listing; HEAD v1, v2, 2; HEAD D3
    for host in ("east", "west"):
        assert log.total(host=host, kind="tags") == 1
        assert log.total(host=host) - log.total(host=host, kind="ping") == per_destination
    # The source is asked only about the digest the destinations lack.
    staging_reads = log.by_repository(host="staging", kind="manifest")
    assert staging_reads == {("staging", "stage/app"): 1}
