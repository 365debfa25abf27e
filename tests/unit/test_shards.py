"""Shards: disjoint parts that keep every image name with every digest it shares.

Values in, shards out: components of the graph image name ↔ digest never split, every edge
belongs to exactly one shard, and the assignment is the same in every process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench.corpus_load import corrected_copy

from cip.model.manifest import Position
from cip.model.refs import Registry
from cip.plan.edges import EdgeGroup
from cip.plan.shards import Shard, image_shards, select_shard
from cip.promote.pipeline import load_and_validate
from tests.cli import REPO, run_cip
from tests.unit.conftest import D1, D2, D3, write

SOURCE = Registry.parse("gcr.io/staging")
MIRRORS = (Registry.parse("us.gcr.io/prod"), Registry.parse("eu.gcr.io/prod"))


def group(image: str, digest: str, manifest: int = 0) -> EdgeGroup:
    return EdgeGroup(manifest, image, digest, ("v1",), SOURCE, MIRRORS, Position("m.yaml", 1, 1))


def many() -> list[EdgeGroup]:
    groups = [group(f"img{i:03d}", "sha256:" + f"{i:064x}") for i in range(200)]
    # One digest under two names (an index and its child listed as images), and one name
    # listed by two manifests with different digests: each chain is one component.
    groups += [group("pause", D1), group("pause-amd64", D1), group("pause-amd64", D2, 1)]
    groups += [group("etcd", D3, 0), group("etcd", D2, 1)]
    return groups


def test_shards_partition_every_group_and_keep_components_whole() -> None:
    groups = many()
    for count in (1, 2, 3, 7):
        owner = image_shards(groups, count)
        parts = [select_shard(groups, groups, Shard(i, count)) for i in range(count)]
        assert sorted(map(id, (g for part in parts for g in part))) == sorted(map(id, groups))
        # pause, pause-amd64 (D1) and etcd (D2 shared with pause-amd64) are one component.
        assert owner["pause"] == owner["pause-amd64"] == owner["etcd"]
        for part in parts:
            digests = {g.digest for g in part}
            assert all(owner[g.image] == owner[part[0].image] for g in part)
            others = {g.digest for p in parts if p is not part for g in p}
            assert not digests & others
    assert Counter(image_shards(groups, 3).values()).keys() == {0, 1, 2}


def test_selection_is_sharded_by_the_whole_graph() -> None:
    """A shard owns the same images whether or not a diff selected only part of them."""
    groups = many()
    only_child = [g for g in groups if g.image == "pause-amd64" and g.digest == D2]
    owner = image_shards(groups, 5)
    for index in range(5):
        chosen = select_shard(groups, only_child, Shard(index, 5))
        assert chosen == (only_child if owner["etcd"] == index else [])


def test_assignment_is_the_same_in_every_process() -> None:
    """Python salts str hashes per process; shards must not depend on that."""
    code = (
        "import json; from tests.unit.test_shards import many;"
        "from cip.plan.shards import image_shards;"
        "print(json.dumps(image_shards(many(), 4), sort_keys=True))"
    )
    answers = set()
    for seed in ("1", "2", "random"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": f"{REPO}:{REPO / 'src'}"}
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO
        )
        assert done.returncode == 0, done.stderr
        answers.add(done.stdout)
    assert len(answers) == 1
    assert json.loads(answers.pop()) == image_shards(many(), 4)


def test_corpus_splits_into_balanced_disjoint_shards(corpus: Path, tmp_path: Path) -> None:
    groups = load_and_validate([], [str(corrected_copy(corpus, tmp_path))]).groups
    edges = Counter[int]()
    for index in range(4):
        for g in select_shard(groups, groups, Shard(index, 4)):
            edges[index] += g.edge_count
    assert sum(edges.values()) == 720_478
    assert min(edges.values()) > 720_478 / 4 / 2  # no shard holds less than half its share


def test_shard_flags_are_checked(tmp_path: Path) -> None:
    path = write(tmp_path / "m.yaml", "registries:\n- name: oci:s\n  src: true\nimages: []\n")
    args = ("run", "--manifest", str(path))
    cases = {
        ("--shard-count", "2"): "--shard-count needs --shard-index or $JOB_COMPLETION_INDEX",
        ("--shard-index", "1"): "--shard-index needs --shard-count",
        ("--shard-index", "2", "--shard-count", "2"): "--shard-index=2 is not below",
        ("--shard-count", "0", "--shard-index", "0"): "--shard-count",
        ("--shard-count", "2", "--shard-index", "0", "--parse-only"): "no meaning here",
    }
    for flags, message in cases.items():
        done = run_cip(*args, *flags)
        assert done.returncode == 2, flags
        assert message in done.stderr, (flags, done.stderr)
        assert "Traceback" not in done.stderr


def test_job_completion_index_counts_only_with_a_shard_count(tmp_path: Path) -> None:
    path = write(tmp_path / "m.yaml", "registries:\n- name: oci:s\n  src: true\nimages: []\n")
    env = {**os.environ, "JOB_COMPLETION_INDEX": "3"}

    def cip(*flags: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "cip.cli", "run", "--manifest", str(path), *flags]
        return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO)

    assert cip("--parse-only").returncode == 0  # an Indexed Job that does not shard
    refused = cip("--shard-count", "2")
    assert refused.returncode == 2
    assert "$JOB_COMPLETION_INDEX=3 is not below --shard-count=2" in refused.stderr
    accepted = cip("--shard-count", "4")
    assert accepted.returncode == 0, accepted.stderr
    assert "shard 3 of 4" in accepted.stderr
