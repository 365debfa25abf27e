"""`cip audit serve` behind a real registry's notifications: a lab docker-registry POSTs every
push and deletion to the running auditor (through a recording relay, so the test reads the
answers the registry got), and every event's verdict shows in those answers and in /metrics."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.e2e.auditor import TOKEN, notifications, running_auditor
from tests.e2e.conftest import push_images, run_cip
from tests.lab.images import PLATFORMS, docker_manifest_list, oci_image, oci_index
from tests.lab.registry_lab import LabRegistry, free_port
from tests.lab.relay import Exchange, Relay

ENV = {**os.environ, "CIP_AUDIT_DISTRIBUTION_TOKEN": TOKEN}


def entries(exchanges: list[Exchange]) -> list[dict[str, Any]]:
    """Every judged event of every answer the registry got, in delivery order."""
    found: list[dict[str, Any]] = []
    for exchange in exchanges:
        assert exchange.status == 200, (exchange.status, exchange.answer)
        found.extend(exchange.answer_json()["events"])
    return found


def verdicts(
    found: list[dict[str, Any]],
) -> dict[tuple[str, str, str | None, str | None], tuple[str, str]]:
    """(action, repository, tag, digest) -> (verdict, rule)."""
    return {
        (e["event"]["action"], e["event"]["repository"], e["event"]["tag"], e["event"]["digest"]): (
            e["verdict"],
            e["rule"],
        )
        for e in found
    }  # fmt: skip


def delete_manifest(lab: LabRegistry, repository: str, digest: str) -> None:
    request = urllib.request.Request(
        f"{lab.url}/v2/{repository}/manifests/{digest}", method="DELETE"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 202


def test_pushes_tags_repositories_and_deletions_get_their_verdicts(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging = registry_factory()
    port = free_port()
    relay = Relay(f"http://127.0.0.1:{port}")
    prod = registry_factory(notifications(f"{relay.url}/distribution"))
    app, multi, rogue = oci_image(1), oci_index(2), oci_image(3)
    logger = docker_manifest_list(4, PLATFORMS[:2])
    amd, arm = logger.children
    push_images(staging, [("stage/app", app, "1.0"), ("stage/multi", multi, "1.0")])
    push_images(staging, [("stage/logger", logger, "parent")])
    push_images(staging, [("stage/logger-amd", amd, "child_amd"), ("stage/logger-arm", arm, "child_arm")])  # fmt: skip
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
- name: logger
  dmap:
    "{logger.digest}": ["parent"]
- name: logger-amd
  dmap:
    "{amd.digest}": ["child_amd"]
- name: logger-arm
  dmap:
    "{arm.digest}": ["child_arm"]
"""
    )
    args = ["--manifest", str(manifest), "--pubsub-auth=none"]
    try:
        with running_auditor(args, tmp_path, port=port, env=ENV) as auditor:
            promoted = run_cip("run", "--manifest", str(manifest), "--confirm")
            assert promoted.returncode == 0, promoted.stdout + promoted.stderr
            # A promotion writes 5 manifests by digest and 5 tags, plus 4 children by digest.
            after_promotion = len(entries(relay.wait_for(lambda ex: len(entries(ex)) >= 14)))
            assert after_promotion == 14
            found = verdicts(entries(relay.answered()))
            assert set(found.values()) <= {
                ("verified", "promoted"),
                ("verified", "child-of-read-index"),
                ("verified", "child-of-cached-index"),
                ("verified", "child-in-manifests"),
            }, found
            for child in multi.children:
                assert found[("push", "prod/multi", None, child.digest)][1].startswith("child-of")
            for child in (amd, arm):  # issue 402: listed under other names
                assert found[("push", "prod/logger", None, child.digest)] == (
                    "verified",
                    "child-in-manifests",
                )

            # Now the changes nobody reviewed.
            push_images(prod, [("prod/app", app, "evil")])  # a rogue tag on a promoted digest
            push_images(prod, [("prod/app", rogue, "1.0")])  # a promoted tag moved
            push_images(prod, [("prod/rogue", rogue, "latest")])  # a rogue repository
            delete_manifest(prod, "prod/rogue", rogue.digest)  # and a deletion
            # Each of the four made two events: the manifest by digest, and its tag.
            relay.wait_for(lambda ex: len(entries(ex)) >= after_promotion + 8)
            found = verdicts(entries(relay.answered()))
            expected = {
                ("push", "prod/app", "evil", app.digest): ("rejected", "tag-not-promoted"),
                ("push", "prod/app", None, rogue.digest): ("rejected", "not-promoted"),
                ("push", "prod/app", "1.0", rogue.digest): ("rejected", "tag-mismatch"),
                ("push", "prod/rogue", None, rogue.digest): ("rejected", "not-promoted"),
                ("push", "prod/rogue", "latest", rogue.digest): ("rejected", "not-promoted"),
                ("delete", "prod/rogue", None, rogue.digest): ("rejected", "deletion"),
                ("delete", "prod/rogue", "latest", None): ("rejected", "deletion"),
            }
            for key, verdict in expected.items():
                assert found.get(key) == verdict, (key, found.get(key))

            # The same verdicts, counted, for alerting.
            judged = entries(relay.answered())
            for action in ("push", "delete"):
                for verdict in ("verified", "rejected", "error"):
                    count = sum(
                        1
                        for e in judged
                        if e["event"]["action"] == action and e["verdict"] == verdict
                    )
                    assert auditor.events_total("distribution", action, verdict) == count
            assert auditor.events_total("distribution", "push", "rejected") >= 5

            # Only the registry's token is accepted.
            body = relay.answered()[0].body
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
                status, answer = auditor.post("/distribution", body, headers)
                assert status == 401, headers
                assert "bearer token" in answer["error"]
            # Each decision also went to stdout as one JSON log line, for Cloud Logging.
            lines = auditor.decision_lines()
            assert len(lines) == len(judged)
            assert {line["severity"] for line in lines} == {"INFO", "ERROR"}
            assert auditor.stop() == 0  # SIGTERM drains, then exits 0
    finally:
        relay.stop()


def test_issue_402_children_pushed_to_production_cost_no_request_to_the_source(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    """The logger index with children listed as logger-amd and logger-arm, pushed to
    production as the promoter pushes it: each child arrives as `…/logger@<child>` and is
    verified from the manifests; the source registry's access log stays empty."""
    staging = registry_factory()
    port = free_port()
    relay = Relay(f"http://127.0.0.1:{port}")
    prod = registry_factory(notifications(f"{relay.url}/distribution"))
    logger = docker_manifest_list(402, PLATFORMS[:2])
    amd, arm = logger.children
    push_images(staging, [("k8s-staging-sub-project/logger", logger, "parent")])
    manifest = tmp_path / "images.yaml"
    manifest.write_text(
        f"""registries:
- name: {staging.host}/k8s-staging-sub-project
  src: true
- name: {prod.host}/k8s-sub-project
images:
- name: logger
  dmap:
    "{logger.digest}": ["parent"]
- name: logger-amd
  dmap:
    "{amd.digest}": ["child_amd"]
- name: logger-arm
  dmap:
    "{arm.digest}": ["child_arm"]
"""
    )
    mark = staging.mark()
    args = ["--manifest", str(manifest), "--pubsub-auth=none"]
    try:
        with running_auditor(args, tmp_path, port=port, env=ENV):
            before = prod.mark()
            push_images(prod, [("k8s-sub-project/logger", logger, "parent")])
            pushes = len(prod.requests_since(before))
            found = entries(relay.wait_for(lambda ex: len(entries(ex)) >= 4))
    finally:
        relay.stop()
    by_digest = {(e["event"]["digest"], e["event"]["tag"]): e for e in found}
    for child in (amd, arm):
        entry = by_digest[(child.digest, None)]
        assert entry["event"]["repository"] == "k8s-sub-project/logger"
        assert (entry["verdict"], entry["rule"]) == ("verified", "child-in-manifests")
    assert by_digest[(logger.digest, "parent")]["rule"] == "promoted"
    assert staging.requests_since(mark) == []  # not one request to the source
    assert len(prod.requests_since(before)) == pushes  # nor to production: nothing was read


def test_malformed_notifications_are_rejected_and_pulls_and_blob_uploads_ignored(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    """A notification the auditor cannot read is rejected, never dropped; pulls and blob
    uploads change no name and are only counted as ignored."""
    staging, prod = registry_factory(), registry_factory()
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        f"registries:\n- name: {staging.host}/s\n  src: true\n- name: {prod.host}/p\nimages: []\n"
    )
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with running_auditor(["--manifest", str(manifest), "--pubsub-auth=none"], tmp_path, env=ENV) as auditor:  # fmt: skip
        status, answer = auditor.post("/distribution", b"not json", headers)
        assert status == 200
        assert [(e["verdict"], e["rule"]) for e in answer["events"]] == [
            ("rejected", "invalid-message")
        ]
        envelope = {
            "events": [
                {"id": "1", "action": "pull", "target": {"repository": "p/x"}},
                {
                    "id": "2",
                    "action": "push",
                    "target": {"mediaType": "application/octet-stream", "repository": "p/x",
                               "digest": "sha256:" + "2" * 64, "url": f"http://{prod.host}/v2/p/x/blobs/x"},
                    "request": {"host": prod.host},
                },
                {"id": "3", "action": "push", "target": {"repository": "p/x", "tag": "1",
                 "mediaType": "application/vnd.oci.image.manifest.v1+json"}, "request": {"host": prod.host}},
            ]
        }  # fmt: skip
        status, answer = auditor.post("/distribution", json.dumps(envelope).encode(), headers)
        assert status == 200
        assert answer["ignored"] == 2
        assert [e["rule"] for e in answer["events"]] == ["not-promoted"]
        assert answer["events"][0]["event"]["registry"] == prod.host
