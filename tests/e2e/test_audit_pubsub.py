"""`cip audit serve` receiving Pub/Sub pushes (GCR's `gcr` topic), POSTed as the push
subscription sends them, with `--pubsub-auth=none`: every message case upstream's auditor
handled, issue 402's exact example, redeliveries, and registry errors answered 500."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.e2e.auditor import running_auditor
from tests.e2e.conftest import push_images
from tests.lab.images import artifact, oci_image, oci_index
from tests.lab.registry_lab import LabRegistry

# Issue 402, verbatim: a manifest list and its two children, listed under their own names.
PARENT = "sha256:c4151a15c8439265d98f66d25ef17964e9e975d894822a54ed7e72db78dba6c6"
CHILD_AMD = "sha256:2c9c8df42ac7525e556bbff81aa9a62960888c69d5faad4aad408893bc95cbc9"
CHILD_ARM = "sha256:a41a91e366e973da0bfd6fce44ba131d561ab435119ff7e1050d1e226a06dbda"
ZERO = "sha256:" + "0" * 64  # upstream's test digest
OTHER = "sha256:" + "1" * 64


def issue_402_manifest(folder: Path, staging: LabRegistry) -> Path:
    """k8s.io/k8s.gcr.io/images/k8s-staging-sub-project/images.yaml of the issue, with its
    registries: the subproject's staging (a lab registry) promoting to gcr.io."""
    path = folder / "sub-project.yaml"
    path.write_text(
        f"""registries:
- name: {staging.host}/k8s-staging-sub-project
  src: true
- name: gcr.io/k8s-sub-project
images:
- name: logger
  dmap:
    "{PARENT}": ["parent"]
- name: logger-amd
  dmap:
    "{CHILD_AMD}": ["child_amd"]
- name: logger-arm
  dmap:
    "{CHILD_ARM}": ["child_arm"]
"""
    )
    return path


def foo_manifest(folder: Path, staging: LabRegistry, prod: LabRegistry) -> Path:
    path = folder / "foo.yaml"
    path.write_text(
        f"""registries:
- name: {staging.host}/foo
  src: true
- name: {prod.host}/foo
images:
- name: bar
  dmap:
    "{ZERO}": ["1.0"]
"""
    )
    return path


def only(answer: dict[str, Any]) -> dict[str, Any]:
    assert len(answer["events"]) == 1, answer
    entry: dict[str, Any] = answer["events"][0]
    return entry


def test_issue_402_child_is_verified_from_the_manifests_without_reading_the_source(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging = registry_factory()
    manifest = issue_402_manifest(tmp_path, staging)
    mark = staging.mark()
    with running_auditor(["--manifest", str(manifest), "--pubsub-auth=none"], tmp_path) as auditor:
        # The message of the issue: the amd64 child, under its parent's name.
        status, answer = auditor.pubsub(
            {"action": "INSERT", "digest": f"gcr.io/k8s-sub-project/logger@{CHILD_AMD}"}, "402"
        )
        assert status == 200
        entry = only(answer)
        assert (entry["verdict"], entry["rule"]) == ("verified", "child-in-manifests")
        assert "logger-amd" in entry["reason"]
        assert entry["manifest"] == f"{manifest}:11:5"
        # The parent by digest and tag, and the child under its own name, as upstream did.
        for payload, rule in (
            ({"action": "INSERT", "digest": f"gcr.io/k8s-sub-project/logger@{PARENT}"}, "promoted"),
            (
                {
                    "action": "INSERT",
                    "digest": f"gcr.io/k8s-sub-project/logger@{PARENT}",
                    "tag": "gcr.io/k8s-sub-project/logger:parent",
                },
                "promoted",
            ),
            (
                {"action": "INSERT", "digest": f"gcr.io/k8s-sub-project/logger-arm@{CHILD_ARM}"},
                "promoted",
            ),
            (
                {"action": "INSERT", "digest": f"gcr.io/k8s-sub-project/logger@{CHILD_ARM}"},
                "child-in-manifests",
            ),
        ):
            status, answer = auditor.pubsub(payload, json.dumps(payload))
            assert status == 200
            assert (only(answer)["verdict"], only(answer)["rule"]) == ("verified", rule), answer
        assert auditor.events_total("pubsub", "push", "verified") == 5
        assert auditor.events_total("pubsub", "push", "rejected") == 0
        assert auditor.stop() == 0
    # Not one request reached the source registry: the manifests alone decided.
    assert staging.requests_since(mark) == []


# Every message upstream's auditor tested, with the words it answered; and the rejections
# of well-formed messages the manifests do not explain.
REJECTED_CASES: list[tuple[dict[str, Any] | bytes, str, str]] = [
    ({"action": "INSERT"}, "invalid-message", "neither 'digest' nor 'tag' was specified"),
    ({}, "invalid-message", "neither 'digest' nor 'tag' was specified"),
    ({"digest": "{prod}/foo/bar@" + ZERO}, "invalid-message", "Action not specified"),
    (
        {"action": "WOOF", "digest": "{prod}/foo/bar@" + ZERO},
        "invalid-message",
        'unknown action "WOOF"',
    ),
    (
        {"action": "INSERT", "digest": "k8s.gcr.io/subproject/foosha256:000"},
        "invalid-message",
        "invalid FQIN: k8s.gcr.io/subproject/foosha256:000",
    ),
    (
        {
            "action": "INSERT",
            "digest": "k8s.gcr.io/subproject/foo@" + ZERO,
            "tag": "k8s.gcr.io/subproject/foo1.0",
        },
        "invalid-message",
        "invalid PQIN: k8s.gcr.io/subproject/foo1.0",
    ),
    (b"{", "invalid-message", "parse failure: message data is not JSON"),
    ({"action": 1}, "invalid-message", "parse failure: 'action' is number, not a string"),
    ({"action": "DELETE", "tag": "{prod}/foo/bar:1.0"}, "deletion", "deletions are prohibited"),
    (
        {"action": "DELETE", "digest": "{prod}/foo/bar@" + ZERO},
        "deletion",
        "deletions are prohibited",
    ),
    (
        {"action": "INSERT", "digest": "{prod}/foo/bar@" + ZERO, "tag": "{prod}/foo/bar:2.0"},
        "tag-not-promoted",
        "but not with tag 2.0",
    ),
    (
        {"action": "INSERT", "digest": "{prod}/foo/bar@" + OTHER, "tag": "{prod}/foo/bar:1.0"},
        "tag-mismatch",
        f"is promoted as {ZERO}, not {OTHER}",
    ),
    (
        {"action": "INSERT", "digest": "{prod}/foo/rogue@" + ZERO},
        "not-promoted",
        "no manifest promotes anything to {prod}/foo/rogue",
    ),
    (
        {"action": "INSERT", "digest": "{prod}/foo/bar@" + OTHER},
        "not-promoted",
        f"{OTHER} is not promoted to {{prod}}/foo/bar",
    ),
    (
        {
            "action": "INSERT",
            "digest": "{prod}/foo/bar@" + OTHER,
            "tag": "{prod}/foo/bar:" + "sha256-" + "1" * 64 + ".sig",
        },
        "not-promoted",
        f"is attached to {OTHER}",
    ),
]


def test_upstream_message_cases_are_rejected_with_upstreams_words(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging, prod = registry_factory(), registry_factory()
    manifest = foo_manifest(tmp_path, staging, prod)
    with running_auditor(["--manifest", str(manifest), "--pubsub-auth=none"], tmp_path) as auditor:
        for index, (payload, rule, reason) in enumerate(REJECTED_CASES):
            if isinstance(payload, dict):
                payload = json.loads(json.dumps(payload).replace("{prod}", prod.host))
            status, answer = auditor.pubsub(payload, f"m-{index}")
            assert status == 200, payload  # a rejection is final: Pub/Sub must not redeliver
            entry = only(answer)
            assert (entry["verdict"], entry["rule"]) == ("rejected", rule), (payload, entry)
            assert reason.replace("{prod}", prod.host) in entry["reason"], (payload, entry)
            assert entry["event"]["id"] == f"m-{index}"
        logged = auditor.decision_lines()
        assert [(d["severity"], d["verdict"], d["rule"]) for d in logged] == [
            ("ERROR", "rejected", rule) for _, rule, _ in REJECTED_CASES
        ]
        invalid = sum(rule == "invalid-message" for _, rule, _ in REJECTED_CASES)
        assert auditor.events_total("pubsub", "invalid", "rejected") == invalid
        assert auditor.events_total("pubsub", "delete", "rejected") == 2
        assert (
            auditor.events_total("pubsub", "push", "rejected") == len(REJECTED_CASES) - invalid - 2
        )
        assert auditor.events_total("pubsub", "push", "verified") == 0


def test_promoted_digests_tags_and_attached_artifacts_are_verified_and_redeliveries_count_once(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging, prod = registry_factory(), registry_factory()
    manifest = foo_manifest(tmp_path, staging, prod)
    name = f"{prod.host}/foo/bar"
    with running_auditor(["--manifest", str(manifest), "--pubsub-auth=none"], tmp_path) as auditor:
        cases = [
            ({"action": "INSERT", "digest": f"{name}@{ZERO}"}, "promoted"),
            ({"action": "INSERT", "digest": f"{name}@{ZERO}", "tag": f"{name}:1.0"}, "promoted"),
            # A tag-only message: the tag is promoted, but what it points at decides, and
            # nothing is there: rejected, never assumed.
            ({"action": "INSERT", "tag": f"{name}:1.0"}, "not-promoted"),
            (
                {"action": "INSERT", "digest": f"{name}@{OTHER}", "tag": f"{name}:sha256-{'0' * 64}.sig"},
                "attached-artifact",
            ),
            ({"action": "INSERT", "digest": f"{name}@{OTHER}", "tag": f"{name}:sha256-{'0' * 64}"}, "attached-artifact"),
        ]  # fmt: skip
        for index, (payload, rule) in enumerate(cases):
            status, answer = auditor.pubsub(payload, f"id-{index}")
            assert status == 200
            assert only(answer)["rule"] == rule, answer
        verified = auditor.events_total("pubsub", "push", "verified")
        assert verified == 4
        # Pub/Sub delivers at least once: the same messageId gets the first answer, once.
        status, again = auditor.pubsub(cases[0][0], "id-0")
        assert status == 200 and only(again)["rule"] == "promoted"
        assert auditor.events_total("pubsub", "push", "verified") == verified
        assert len(auditor.decision_lines()) == len(cases)


def test_unreachable_registry_answers_500_and_the_redelivery_is_judged_again(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging, prod = registry_factory(), registry_factory()
    manifest = foo_manifest(tmp_path, staging, prod)
    prod.stop()
    staging.stop()  # nothing answers: neither production nor the source can be read
    # An unknown digest in a promoted repository needs the parent indexes read.
    payload = {"action": "INSERT", "digest": f"{prod.host}/foo/bar@{OTHER}"}
    with running_auditor(["--manifest", str(manifest), "--pubsub-auth=none"], tmp_path) as auditor:
        for _ in range(2):
            status, answer = auditor.pubsub(payload, "retry-me")
            assert status == 500  # Pub/Sub redelivers
            entry = only(answer)
            assert (entry["verdict"], entry["rule"]) == ("error", "registry-error")
            assert prod.host in entry["reason"] or staging.host in entry["reason"]
        assert auditor.events_total("pubsub", "push", "error") == 2


def test_deletions_are_verified_with_allow_deletions_only_when_no_manifest_lists_them(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging, prod = registry_factory(), registry_factory()
    manifest = foo_manifest(tmp_path, staging, prod)
    name = f"{prod.host}/foo/bar"
    args = ["--manifest", str(manifest), "--pubsub-auth=none", "--allow-deletions"]
    with running_auditor(args, tmp_path) as auditor:
        cases = [
            ({"action": "DELETE", "digest": f"{name}@{ZERO}"}, "rejected", "deletion"),
            ({"action": "DELETE", "tag": f"{name}:1.0"}, "rejected", "deletion"),
            ({"action": "DELETE", "digest": f"{name}@{OTHER}"}, "verified", "deletion-allowed"),
            ({"action": "DELETE", "tag": f"{name}:old"}, "verified", "deletion-allowed"),
        ]
        for index, (payload, verdict, rule) in enumerate(cases):
            status, answer = auditor.pubsub(payload, f"d-{index}")
            assert status == 200
            assert (only(answer)["verdict"], only(answer)["rule"]) == (verdict, rule), answer
        assert auditor.events_total("pubsub", "delete", "verified") == 2
        assert auditor.events_total("pubsub", "delete", "rejected") == 2


def test_children_not_listed_are_found_by_reading_only_their_promoted_index(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    """A child not listed in the manifests is found by reading the one index promoted to
    that repository, never by walking a registry (no catalog, no tag listing)."""
    staging, prod = registry_factory(), registry_factory()
    index = oci_index(402)
    push_images(prod, [("foo/multi", index, "1.0")])
    manifest = tmp_path / "multi.yaml"
    manifest.write_text(
        f"""registries:
- name: {staging.host}/foo
  src: true
- name: {prod.host}/foo
images:
- name: multi
  dmap:
    "{index.digest}": ["1.0"]
- name: single
  dmap:
    "{oci_image(7).digest}": ["1.0"]
"""
    )
    marks = {lab.host: lab.mark() for lab in (staging, prod)}
    with running_auditor(["--manifest", str(manifest), "--pubsub-auth=none"], tmp_path) as auditor:
        for child in index.children:
            status, answer = auditor.pubsub(
                {"action": "INSERT", "digest": f"{prod.host}/foo/multi@{child.digest}"},
                child.digest,
            )
            assert status == 200
            entry = only(answer)
            assert entry["parent"] == index.digest
            assert entry["rule"] in ("child-of-read-index", "child-of-cached-index")
        rules = [d["rule"] for d in auditor.decision_lines()]
        assert rules == ["child-of-read-index", "child-of-cached-index"]
    assert staging.requests_since(marks[staging.host]) == []
    reads = [f"{e.method} {e.path}" for e in prod.requests_since(marks[prod.host])]
    assert reads.count(f"GET /v2/foo/multi/manifests/{index.digest}") == 1
    assert not [r for r in reads if "_catalog" in r or "tags/list" in r], reads


def test_a_referrer_pushed_by_digest_is_verified_through_its_subject(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    """An OCI 1.1 artifact (an SBOM, a cosign bundle) names its subject inside the manifest:
    the auditor reads it from production and judges the subject."""
    staging, prod = registry_factory(), registry_factory()
    index, stray = oci_index(403), oci_image(404)
    sbom = artifact(405, "application/spdx+json", subject=index)
    stray_sbom = artifact(406, "application/spdx+json", subject=stray)
    push_images(prod, [("foo/multi", index, "1.0"), ("foo/multi", stray, None)])
    push_images(prod, [("foo/multi", sbom, None), ("foo/multi", stray_sbom, None)])
    manifest = tmp_path / "multi.yaml"
    manifest.write_text(
        f"""registries:
- name: {staging.host}/foo
  src: true
- name: {prod.host}/foo
images:
- name: multi
  dmap:
    "{index.digest}": ["1.0"]
"""
    )
    with running_auditor(["--manifest", str(manifest), "--pubsub-auth=none"], tmp_path) as auditor:
        status, answer = auditor.pubsub(
            {"action": "INSERT", "digest": f"{prod.host}/foo/multi@{sbom.digest}"}, "sbom"
        )
        assert status == 200
        assert (only(answer)["verdict"], only(answer)["rule"]) == ("verified", "attached-artifact")
        assert f"refers to {index.digest}" in only(answer)["reason"]
        status, answer = auditor.pubsub(
            {"action": "INSERT", "digest": f"{prod.host}/foo/multi@{stray_sbom.digest}"}, "stray"
        )
        assert status == 200
        assert (only(answer)["verdict"], only(answer)["rule"]) == ("rejected", "not-promoted")
