"""Request economy on registry.k8s.io's real manifests, against the synthetic registry.

A few subprojects of the corpus, every registry name pointed at the simulator: a no-op plan
costs one request per destination repository and none at the sources, and a pull request
adding one image version plans only that version, asking only that image's repositories.
"""

from __future__ import annotations

from pathlib import Path

from bench import k8s_corpus
from bench.cases_k8s import edge_counts, signature_steps, signing_key
from bench.registry_sim import running_simulator

from tests.cli import run_cip
from tests.unit.conftest import corpus

__all__ = ["corpus"]

SUBPROJECTS = {"k8s-staging-kueue", "k8s-staging-git-sync", "k8s-staging-etcd"}


def _copy(corpus: Path, tmp_path: Path) -> Path:
    return k8s_corpus.scratch_corpus(corpus, tmp_path, SUBPROJECTS.__contains__)


def test_no_op_plan_costs_one_request_per_destination_repository(
    corpus: Path, tmp_path: Path
) -> None:
    """With a signer configured too: the `.sig` and `.att` tags are in the same listings."""
    copy = _copy(corpus, tmp_path)
    manifests = k8s_corpus.read_corpus(copy)
    destinations = k8s_corpus.destination_repositories(manifests)
    key = signing_key(tmp_path / "key.pem")
    with running_simulator(k8s_corpus.sim_hosts(manifests, google=True, signed=True)) as sim:
        k8s_corpus.point_at(copy, sim.addresses)
        done = run_cip("run", "--thin-manifest-dir", str(copy), "--signing-key", str(key))
        log = sim.log()
    assert done.returncode == 0, done.stderr
    edges = edge_counts(done.stdout)
    assert edges["present"] == edges["total"] > 2_000
    assert signature_steps(done.stdout) == {}  # every digest is signed already
    assert signature_steps(done.stdout, "Attestations") == {}  # and attested
    per_repository = log.by_repository()
    assert set(per_repository) == destinations  # and nothing at the sources
    assert set(per_repository.values()) == {1}
    assert log.total(kind="manifest") == 0


def test_pull_request_asks_only_for_the_added_image(corpus: Path, tmp_path: Path) -> None:
    copy = _copy(corpus, tmp_path)
    manifests = k8s_corpus.read_corpus(copy)
    chosen, image = k8s_corpus.pr_image(manifests)
    assert chosen.subproject == k8s_corpus.PR_SUBPROJECT
    hosts = k8s_corpus.sim_hosts(manifests, google=True)
    source_host, source_repo = k8s_corpus.repository(chosen.source, image)
    staging = next(h for h in hosts if h.name == source_host)
    staging.content.add(source_repo, k8s_corpus.PR_DIGEST, [k8s_corpus.PR_TAG])
    with running_simulator(hosts) as sim:
        k8s_corpus.point_at(copy, sim.addresses)
        k8s_corpus.git(copy, "init", "-q", "-b", "main")
        k8s_corpus.git(copy, "add", "-A")
        k8s_corpus.git(copy, "commit", "-q", "-m", "base")
        k8s_corpus.add_pr_version(copy, chosen.subproject, image)
        k8s_corpus.git(copy, "commit", "-q", "-am", "one more version")
        done = run_cip("run", "--thin-manifest-dir", str(copy), "--diff-base", "HEAD^")
        log = sim.log()
    assert done.returncode == 0, done.stderr
    assert edge_counts(done.stdout) == {
        "total": len(chosen.destinations), "copy": len(chosen.destinations), "add-tag": 0,
        "present": 0, "lost": 0, "tag-move": 0, "failed": 0,
    }  # fmt: skip
    wanted = {k8s_corpus.repository(d, image) for d in chosen.destinations}
    assert set(log.by_repository(kind="tags")) == wanted
    assert log.by_repository(kind="manifest") == {(source_host, source_repo): 1}


def test_unsigned_mirrors_plan_a_signature_per_digest(corpus: Path, tmp_path: Path) -> None:
    """The counterpart: without `.sig` tags the same listings make the plan sign (the primary
    mirror) and replicate (the others), so the no-op result above is not vacuous."""
    copy = _copy(corpus, tmp_path)
    manifests = k8s_corpus.read_corpus(copy)
    key = signing_key(tmp_path / "key.pem")
    with running_simulator(k8s_corpus.sim_hosts(manifests, google=True)) as sim:
        k8s_corpus.point_at(copy, sim.addresses)
        done = run_cip("run", "--thin-manifest-dir", str(copy), "--signing-key", str(key))
    assert done.returncode == 0, done.stderr
    steps = signature_steps(done.stdout)
    assert steps.get("sign", 0) > 0 and steps.get("replicate-signature", 0) > steps["sign"]
