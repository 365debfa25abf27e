"""Reconcile: when a registry restart lost its queued notifications, `cip audit reconcile` and
`cip audit serve --reconcile` still find every rogue tag and repository, from the registry's
catalog and one tag listing per repository."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from tests.e2e.auditor import TOKEN, notifications, running_auditor
from tests.e2e.conftest import push_images, run_cip
from tests.lab.google_listing import GoogleListing
from tests.lab.images import oci_image, oci_index
from tests.lab.registry_lab import LabRegistry, free_port, start_registry

ENV = {**os.environ, "CIP_AUDIT_DISTRIBUTION_TOKEN": TOKEN}


def test_reconcile_finds_what_lost_events_did_not_report(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging = registry_factory()
    port = free_port()  # the auditor's, down until the registry restarted
    config = notifications(f"http://127.0.0.1:{port}/distribution")
    prod = registry_factory(config)
    app, multi, rogue = oci_image(11), oci_index(12), oci_image(13)
    push_images(staging, [("stage/app", app, "1.0"), ("stage/multi", multi, "1.0")])
    manifest = tmp_path / "promoter.yaml"
    manifest.write_text(
        f"""registries:
- name: {staging.host}/stage
  src: true
- name: {prod.host}/prod
images:
- name: app
  dmap:
    "{app.digest}": ["1.0"]
- name: multi
  dmap:
    "{multi.digest}": ["1.0"]
"""
    )
    assert run_cip("run", "--manifest", str(manifest), "--confirm").returncode == 0
    clean = run_cip("audit", "reconcile", "--manifest", str(manifest))
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "2 tags and digests: 2 verified, 0 rejected, 0 errors" in clean.stdout

    push_images(prod, [("prod/app", app, "evil"), ("prod/rogue", rogue, "latest")])
    # Distribution queues notifications in memory: a restart loses them.
    prod.stop()
    restarted = start_registry(prod.root, config=config, port=int(prod.host.rpartition(":")[2]))
    try:
        with running_auditor(
            ["--manifest", str(manifest), "--pubsub-auth=none", "--reconcile=1h"],
            tmp_path,
            port=port,
            env=ENV,
        ) as auditor:
            deadline = time.monotonic() + 60
            key = ("cip_audit_reconcile_runs_total", (("outcome", "problems"),))
            while auditor.metrics()[key] < 1:
                assert time.monotonic() < deadline, auditor.stderr.read_text()
                time.sleep(0.1)
            samples = auditor.metrics()
            assert samples[("cip_audit_reconcile_items", (("verdict", "rejected"),))] == 2
            assert samples[("cip_audit_reconcile_items", (("verdict", "verified"),))] == 2
            lost = sum(
                value
                for (name, labels), value in samples.items()
                if name == "cip_audit_events_total" and ("source", "distribution") in labels
            )
            assert lost == 0  # the registry's queue did not survive the restart
            logged = {(d["event"]["repository"], d["event"]["tag"], d["rule"]) for d in auditor.decision_lines()}  # fmt: skip
            assert logged == {
                ("prod/app", "evil", "tag-not-promoted"),
                ("prod/rogue", "latest", "not-promoted"),
            }
            assert auditor.stop() == 0

        once = run_cip("audit", "reconcile", "--manifest", str(manifest), "--output=json")
        assert once.returncode == 1, once.stderr
        document = json.loads(once.stdout)
        assert document["command"] == "audit reconcile"
        audit = document["audit"]
        assert audit["registries"] == [prod.host]
        assert audit["repositories"] == 3 and audit["tags_only"] == 3
        assert audit["verdicts"] == {"verified": 2, "rejected": 2, "error": 0}
        problems = {
            (p["event"]["repository"], p["event"]["tag"], p["event"]["digest"], p["rule"])
            for p in audit["problems"]
        }
        assert problems == {
            ("prod/app", "evil", app.digest, "tag-not-promoted"),
            ("prod/rogue", "latest", rogue.digest, "not-promoted"),
        }
        text = run_cip("audit", "reconcile", "--manifest", str(manifest))
        assert text.returncode == 1
        assert (
            f"rejected  {prod.host}/prod/rogue:latest@{rogue.digest}: not-promoted" in text.stdout
        )
        assert "3 repositories list tags only" in text.stdout
    finally:
        restarted.stop()


def test_reconcile_of_an_unreachable_registry_is_an_error_naming_it(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging, prod = registry_factory(), registry_factory()
    prod.stop()
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        f"registries:\n- name: {staging.host}/s\n  src: true\n- name: {prod.host}/p\n"
        f'images:\n- name: a\n  dmap:\n    "{oci_image(1).digest}": ["1"]\n'
    )
    done = run_cip(
        "audit", "reconcile", "--manifest", str(manifest), "--output=json",
        "--retry-timeout=2s", "--retry-max-backoff=500ms",
    )  # fmt: skip
    assert done.returncode == 1
    problems = json.loads(done.stdout)["audit"]["problems"]
    assert [(p["verdict"], p["rule"]) for p in problems] == [("error", "registry-error")]
    assert f"cannot list {prod.host}/" in problems[0]["reason"]
    usage = run_cip("audit", "reconcile", "--manifest", str(manifest), "--output=yaml")
    assert usage.returncode == 2
    assert "--output=yaml is not available" in usage.stderr
    missing = run_cip(
        "audit", "reconcile", "--manifest", str(tmp_path / "no.yaml"), "--output=json"
    )
    assert missing.returncode == 2
    document = json.loads(missing.stdout)
    assert (document["command"], document["audit"]) == ("audit reconcile", None)
    assert "file not found" in document["errors"][0]["message"]


def test_reconcile_judges_untagged_digests_where_the_registry_lists_them(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    """With Google's digest listing, children and untagged digests are judged too: children
    of a promoted index are verified by reading that index once; a rogue digest pushed
    without a tag is rejected; no tag needs a HEAD."""
    staging, prod = registry_factory(), registry_factory()
    app, multi, rogue = oci_image(31), oci_index(32), oci_image(33)
    push_images(prod, [("prod/app", app, "1.0"), ("prod/multi", multi, "1.0")])
    push_images(prod, [("prod/app", rogue, None)])  # untagged: invisible to tag listings
    front = GoogleListing(prod)
    manifest = tmp_path / "promoter.yaml"
    manifest.write_text(
        f"""registries:
- name: {staging.host}/stage
  src: true
- name: {front.host}/prod
images:
- name: app
  dmap:
    "{app.digest}": ["1.0"]
- name: multi
  dmap:
    "{multi.digest}": ["1.0"]
"""
    )
    mark = prod.mark()
    try:
        done = run_cip("audit", "reconcile", "--manifest", str(manifest), "--output=json")
    finally:
        front.stop()
    assert done.returncode == 1, done.stderr
    audit = json.loads(done.stdout)["audit"]
    assert audit["tags_only"] == 0
    assert audit["verdicts"] == {"verified": 4, "rejected": 1, "error": 0}
    [problem] = audit["problems"]
    assert (problem["event"]["repository"], problem["event"]["tag"]) == ("prod/app", None)
    assert (problem["event"]["digest"], problem["rule"]) == (rogue.digest, "not-promoted")
    reads = [f"{e.method} {e.path}" for e in prod.requests_since(mark)]
    assert not [r for r in reads if r.startswith("HEAD")], reads
    manifest_reads = sorted(r for r in reads if "/manifests/" in r)
    # The index, once, to find its children; the rogue digest, to see whether it has a subject.
    assert manifest_reads == sorted(
        [
            f"GET /v2/prod/multi/manifests/{multi.digest}",
            f"GET /v2/prod/app/manifests/{rogue.digest}",
        ]
    )
