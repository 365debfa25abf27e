"""`cip check` on a pull request: a good addition passes, each check fails on its own case."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.check_repo import IMAGES, MIB, PullRequest, entry, open_pull_request
from tests.lab.images import oci_image
from tests.lab.registry_lab import LabRegistry

LOST = "sha256:" + "e" * 64


@pytest.fixture
def pr(
    registry_factory: Callable[..., LabRegistry],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> PullRequest:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    return open_pull_request(registry_factory, tmp_path / "repo")


def statuses(document: dict[str, object]) -> dict[str, str]:
    checks = document["checks"]
    assert isinstance(checks, list)
    return {c["id"]: c["status"] for c in checks}


def test_a_good_addition_passes_and_reads_only_what_it_adds(pr: PullRequest) -> None:
    pr.write_images(pr.base_images() + entry("app", (pr.new, ["2.0"])))
    marks = {lab.host: lab.mark() for lab in (pr.staging, pr.production)}
    done = pr.check()
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert out.startswith(f"cip check: base {pr.base[:12]}, head working tree: ")
    assert "1 image digest changed, 1 added" in out
    for line in ("  pass     manifest", "  pass     tag-move", "  pass     staging"):
        assert line in out
    assert (
        "  skipped  signature        every added digest is signed as the policy requires: " in out
    )
    assert "not asked for: no --verify-key or --certificate-identity policy" in out
    assert "Checks: 6 passed, 3 skipped" in out and "Findings" not in out
    assert (
        "  skipped  vulnerabilities" in out and "not asked for: no --vuln-severity-threshold" in out
    )
    # Production: one tag listing of prod/app and a HEAD of the new digest; staging: the
    # index and its two children (staging and size share the reads), and the planner's HEAD.
    touched = {e.path.split("/")[3] for lab in (pr.staging, pr.production)
               for e in lab.requests_since(marks[lab.host]) if e.path.count("/") > 3}  # fmt: skip
    assert touched == {"app"}  # tool is not in the change: never read
    staging_gets = [
        e for e in pr.staging.requests_since(marks[pr.staging.host]) if e.method == "GET"
    ]
    assert len(staging_gets) == 3, staging_gets

    document = json.loads(pr.check("--output=json").stdout)
    assert document["command"] == "check" and document["ok"] is True
    assert document["change"]["base"] == {"ref": pr.base, "commit": pr.base}
    assert document["change"]["head"] == {"ref": None, "commit": None}
    assert (document["change"]["selected"], document["change"]["added"]) == (1, 1)
    assert statuses(document)["signature"] == "skipped" and document["findings"] == []


def test_a_manifest_the_change_breaks_is_a_finding_not_a_usage_error(pr: PullRequest) -> None:
    pr.write_images(pr.base_images() + entry("app", (pr.new, ["2.0"])).replace('"2.0"', "2.0"))
    done = pr.check()
    assert done.returncode == 1, done.stderr
    line = pr.line_of("2.0")
    assert f"{IMAGES}:{line}:" in done.stdout
    assert "error: [manifest] invalid tag: 2.0 is a number in YAML" in done.stdout
    assert "  skipped  tag-move" in done.stdout
    document = json.loads(pr.check("--output=json").stdout)
    assert statuses(document) == {"manifest": "fail"} | {
        c: "skipped"
        for c in (
            "overlap",
            "tag-move",
            "removal",
            "staging",
            "size",
            "vulnerabilities",
            "signature",
            "provenance",
        )
    }
    [finding] = document["findings"]
    assert (finding["check"], finding["file"], finding["line"]) == ("manifest", IMAGES, line)


def test_overlap_two_added_digests_under_one_tag(pr: PullRequest) -> None:
    other = oci_image(83)
    pr.write_images(pr.base_images() + entry("app", (pr.new, ["3.0"]), (other, ["3.0"])))
    done = pr.check("--checks=overlap")
    assert done.returncode == 1, done.stdout + done.stderr
    line = pr.line_of(other.digest)
    assert f"{IMAGES}:{line}:5: error: [overlap] tag 3.0 of" in done.stdout
    assert "Checks: 1 failed, 1 passed" in done.stdout  # overlap, and manifest which always runs


def test_tag_move_against_what_production_holds(pr: PullRequest) -> None:
    images = entry("app", (pr.app, ["latest"]), (pr.new, ["1.0"])) + entry(
        "tool", (pr.tool, ["0.1"])
    )
    pr.write_images(images)
    done = pr.check()
    assert done.returncode == 1, done.stdout + done.stderr
    line = pr.line_of(pr.new.digest)
    assert (
        f"{IMAGES}:{line}:5: error: [tag-move] tag 1.0 of app is {pr.app.digest} at "
        f"{pr.production.host}/prod/app; the change points it at {pr.new.digest[7:19]}: "
        "tags never move"
    ) in done.stdout
    assert "  pass     overlap" in done.stdout and "  pass     removal" in done.stdout


def test_removal_warns_and_forbid_removal_fails(pr: PullRequest) -> None:
    pr.write_images(entry("app", (pr.app, ["1.0"])))
    done = pr.check()
    assert done.returncode == 0, done.stdout + done.stderr
    app_line = pr.line_of("- name: app")
    assert (
        f"{IMAGES}:{app_line}:3: warning: [removal] tag latest of app ({pr.app.digest[7:19]}) "
        "was removed from the manifests: promoted tags are never unpromoted silently"
    ) in done.stdout
    assert (
        f"{IMAGES}: warning: [removal] tool {pr.tool.digest} (tags 0.1) was removed from the "
        "manifests (line 6 at the base): promoted images are never unpromoted silently\n"
    ) in done.stdout
    assert "  warn     removal" in done.stdout and "Checks: 1 warned" in done.stdout
    forbidden = pr.check("--forbid-removal", "--checks=removal")
    assert forbidden.returncode == 1
    assert f"{IMAGES}:{app_line}:3: error: [removal] tag latest" in forbidden.stdout


def test_staging_lacks_an_added_digest_or_a_child_of_an_index(pr: PullRequest) -> None:
    missing_child = pr.new.children[1]
    pr.delete_manifest("staging/app", missing_child.digest)
    pr.write_images(pr.base_images() + entry("app", (pr.new, ["2.0"])) + f'    "{LOST}": ["9"]\n')
    done = pr.check("--checks=staging")
    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        f"{IMAGES}:{pr.line_of(LOST)}:5: error: [staging] {LOST} is not in the source "
        f"repository {pr.staging.host}/staging/app"
    ) in done.stdout
    assert (
        f"{IMAGES}:{pr.line_of(pr.new.digest)}:5: error: [staging] index {pr.new.digest} lists "
        f"{missing_child.digest} (linux/arm64), which {pr.staging.host}/staging/app does not hold"
    ) in done.stdout


def test_size_above_the_limit(pr: PullRequest) -> None:
    from tests.e2e.conftest import push_images

    big = oci_image(84, large_layer=MIB + MIB // 2)
    push_images(pr.staging, [("staging/app", big, None)])
    pr.write_images(pr.base_images() + entry("app", (big, ["big"])))
    passed = pr.check("--checks=size")
    assert passed.returncode == 0, passed.stdout  # the default limit: 2048 MiB
    done = pr.check("--checks=size", "--max-image-size=1")
    assert done.returncode == 1
    assert (
        f"{IMAGES}:{pr.line_of(big.digest)}:5: error: [size] app {big.digest} is 1.5 MiB "
        "compressed (config and layers, 1 platform), above --max-image-size 1 MiB"
    ) in done.stdout


def test_head_at_a_commit_ignores_the_working_tree(pr: PullRequest) -> None:
    pr.write_images(pr.base_images() + entry("app", (pr.new, ["2.0"])))
    head = pr.commit("add app 2.0")
    (pr.root / IMAGES).write_text("images: [broken\n")
    at_head = pr.check("--head", "HEAD", "--output=json")
    assert at_head.returncode == 0, at_head.stdout + at_head.stderr
    document = json.loads(at_head.stdout)
    assert document["change"]["head"] == {"ref": "HEAD", "commit": head}
    assert document["change"]["added"] == 1
    working = pr.check()
    assert working.returncode == 1 and "[manifest] invalid YAML" in working.stdout
    assert pr.git("status", "--porcelain") == f"M {IMAGES}"  # nothing checked out


def test_missing_refs_and_bad_flags_are_exit_2(pr: PullRequest) -> None:
    done = pr.check("--head", "no-such-branch")
    assert done.returncode == 2
    assert (
        "git ref 'no-such-branch' not found" in done.stderr and "fetch more history" in done.stderr
    )
    gone = pr.check("--diff-base", "origin/main", "--output=json")  # the last --diff-base wins
    assert gone.returncode == 2 and json.loads(gone.stdout)["command"] == "check"
    for args in (["--checks=nope"], ["--skip-checks=manifest"], ["--output=yaml"]):
        refused = pr.check(*args)
        assert refused.returncode == 2, args
        assert "Traceback" not in refused.stderr
