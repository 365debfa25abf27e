"""`cip verify` through the CLI against the synthetic registry, and `--merge` of its shards.

Verification reads destinations only; it exits 1 listing every edge not in place, in text and
in the JSON document (which run_cip validates against the schema); shards' documents merge
into one summary that names a missing shard.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from bench.registry_sim import RunningSimulator, running_simulator
from bench.sim_content import SimContent, SimHost

from tests.cli import run_cip

DIGESTS = {f"img{i}": "sha256:" + f"{i + 1:x}" * 64 for i in range(8)}
OTHER = "sha256:" + "f" * 64


@pytest.fixture(params=[True, False], ids=["google-listing", "spec-only"])
def registries(request: pytest.FixtureRequest) -> Iterator[RunningSimulator]:
    """Staging holds everything; prod holds everything but img1 (missing), img2:latest
    (tag missing) and img3:1.0 (on another digest)."""
    staging, prod = SimContent(), SimContent()
    for name, digest in DIGESTS.items():
        staging.add(f"stage/{name}", digest, ["1.0", "latest"])
        if name == "img1":
            continue
        tags = {"img2": ["1.0"], "img3": ["latest"]}.get(name, ["1.0", "latest"])
        prod.add(f"prod/{name}", digest, tags)
    prod.add("prod/img3", OTHER, ["1.0"])
    google = bool(request.param)
    hosts = [SimHost("staging", staging, google), SimHost("prod", prod, google)]
    with running_simulator(hosts) as sim:
        yield sim


def manifest(folder: Path, sim: RunningSimulator) -> Path:
    body = {
        "registries": [
            {"name": f"{sim.addresses['staging']}/stage", "src": True},
            {"name": f"{sim.addresses['prod']}/prod"},
        ],
        "images": [{"name": n, "dmap": {d: ["1.0", "latest"]}} for n, d in DIGESTS.items()],
    }
    path = folder / "promoter.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def test_verify_lists_every_edge_not_in_place(registries: RunningSimulator, tmp_path: Path) -> None:
    path = manifest(tmp_path, registries)
    text = run_cip("verify", "--manifest", str(path))
    assert text.returncode == 1, text.stderr
    prod = f"{registries.addresses['prod']}/prod"
    lines = text.stdout.splitlines()
    line = path.read_text().splitlines().index(f"    {DIGESTS['img1']}:") + 1
    assert f"  missing       {prod}/img1:1.0 wants {DIGESTS['img1']} ({path}:{line}:5)" in lines
    assert any(line.startswith(f"  tag-missing   {prod}/img2:latest") for line in lines)
    assert any(
        line.startswith(f"  tag-elsewhere {prod}/img3:1.0 is {OTHER}, the manifest wants")
        for line in lines
    )
    assert lines[-1] == (
        "Verified 16 edges: 12 in place, 4 not in place "
        "(missing 2, tag-missing 1, tag-elsewhere 1, unreadable 0)"
    )
    assert registries.log().total(host="staging") == 0  # sources are never read

    document = json.loads(run_cip("verify", "--manifest", str(path), "--output=json").stdout)
    assert (document["command"], document["ok"], document["exit_code"]) == ("verify", False, 1)
    check = document["verification"]
    assert (check["edges"], check["in_place"]) == (16, 12)
    assert [(g["image"], g["tag"], g["gap"]) for g in check["gaps"]] == [
        ("img1", "1.0", "missing"), ("img1", "latest", "missing"),
        ("img2", "latest", "tag-missing"), ("img3", "1.0", "tag-elsewhere"),
    ]  # fmt: skip
    assert check["gaps"][3]["current"] == OTHER


def test_merge_of_verify_shards(registries: RunningSimulator, tmp_path: Path) -> None:
    path = manifest(tmp_path, registries)
    files = []
    for index in range(3):
        done = run_cip(
            "verify", "--manifest", str(path), "--output=json",
            "--shard-count", "3", "--shard-index", str(index),
        )  # fmt: skip
        files.append(tmp_path / f"shard-{index}.json")
        files[-1].write_text(done.stdout)
    merged = run_cip("verify", "--merge", *map(str, files), "--output=json")
    assert merged.returncode == 1  # the gaps found by the shards
    document = json.loads(merged.stdout)
    check = document["verification"]
    assert (check["edges"], check["in_place"], len(check["gaps"])) == (16, 12, 4)
    assert [s["index"] for s in check["shards"]] == [0, 1, 2]
    assert check["missing_shards"] == []

    text = run_cip("verify", "--merge", str(files[0]), str(files[2]))
    assert text.returncode == 1
    assert "shard 1 of 3: no document" in text.stdout
    assert text.stdout.splitlines()[-1].endswith("NOT OK")


def test_merge_refuses_documents_that_do_not_belong_together(tmp_path: Path) -> None:
    def doc(name: str, index: int, count: int) -> str:
        body = {"schema_version": 3, "command": "run", "ok": True, "exit_code": 0}
        body["shard"] = {"index": index, "count": count}
        (tmp_path / name).write_text(json.dumps(body))
        return str(tmp_path / name)

    (tmp_path / "garbage.json").write_text("{not json")
    cases = {
        (doc("a", 0, 2), doc("b", 1, 3)): "disagree on the shard count",
        (doc("c", 0, 2), doc("d", 0, 2)): "shard 0 appears twice",
        (str(tmp_path / "garbage.json"),): "garbage.json: not a JSON document",
    }
    for files, message in cases.items():
        done = run_cip("verify", "--merge", *files)
        assert done.returncode == 2, done.stdout
        assert message in done.stderr
    complete = run_cip("verify", "--merge", doc("e", 0, 2), doc("f", 1, 2))
    assert complete.returncode == 0, complete.stderr
    assert complete.stdout.splitlines()[-1] == "Merged 2 of 2 shards: 0 registry requests; ok"


def test_verify_flags_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("registries:\n- name: oci:s\n  src: true\nimages: []\n")
    cases = {
        ("verify",): "name the manifests",
        ("verify", "--merge", str(path), "--manifest", str(path)): "--merge reads",
        ("verify", "--manifest", str(path), str(path)): "documents go with --merge",
        ("verify", "--manifest", str(path), "--output=yaml"): "--output=yaml",
    }
    for args, message in cases.items():
        done = run_cip(*args)
        assert done.returncode == 2, args
        assert message in done.stderr, (args, done.stderr)
    usage = run_cip("verify", "--output=json")
    assert json.loads(usage.stdout)["command"] == "verify"
