"""`cip run` (dry run) against real registries: verdicts, exit codes, zero writes, budgets."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.e2e.conftest import push_images, run_cip, writes
from tests.lab.images import docker_manifest_list, oci_image, oci_index
from tests.lab.registry_lab import LabRegistry
from tests.unit.conftest import write

LOST = "sha256:" + "e" * 64


def manifest(path: Path, source: str, mirrors: list[str], images: str) -> Path:
    registries = f"registries:\n- name: {source}\n  src: true\n" + "".join(
        f"- name: {m}\n" for m in mirrors
    )
    return write(path, registries + "images:\n" + images)


def test_dry_run_verdicts_exit_code_and_zero_writes(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging, mirror_a, mirror_b = registry_factory(), registry_factory(), registry_factory()
    app, tool, other = oci_image(1), oci_index(2), oci_image(3)
    push_images(staging, [("staging/app", app, "1.0"), ("staging/tool", tool, "v1")])
    # mirror A already has app:1.0 (present); mirror B has app:1.0 on another digest (move).
    push_images(mirror_a, [("prod/app", app, "1.0")])
    push_images(mirror_b, [("prod/app", other, "1.0")])
    path = manifest(
        tmp_path / "m.yaml",
        f"{staging.host}/staging",
        [f"{mirror_a.host}/prod", f"{mirror_b.host}/prod"],
        f'- name: app\n  dmap:\n    "{app.digest}": ["1.0", "latest"]\n'
        f'- name: tool\n  dmap:\n    "{tool.digest}": ["v1"]\n'
        f'- name: gone\n  dmap:\n    "{LOST}": ["1"]\n',
    )
    marks = {lab.host: lab.mark() for lab in (staging, mirror_a, mirror_b)}
    done = run_cip("run", "--manifest", str(path))
    assert done.returncode == 1, done.stderr
    out = done.stdout
    problems, _, rest = out.partition("Images:")
    assert "Problems (2):" in problems
    assert f"lost      gone@{LOST}" in problems
    assert f"tag move  {mirror_b.host}/prod/app:1.0 is {other.digest}" in problems
    assert "refused, tags never move" in problems
    assert f"app   {app.digest[7:19]}  1.0,latest  add-tag 1, tag-move 1" in rest
    assert f"tool  {tool.digest[7:19]}  v1  copy 2" in rest
    assert "Edges 8: copy 2, add-tag 1, present 1, lost 2, tag-move 2, failed 0" in rest
    assert "(dry run: nothing written)" in rest
    for lab in (staging, mirror_a, mirror_b):
        assert writes(lab, marks[lab.host]) == [], lab.host


def test_dry_run_json_groups_by_image_and_digest(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging, mirror = registry_factory(), registry_factory()
    app = docker_manifest_list(4)
    push_images(staging, [("app", app, "2.0")])
    path = manifest(
        tmp_path / "m.yaml",
        staging.host,
        [mirror.host],
        f'- name: app\n  dmap:\n    "{app.digest}": ["2.0"]\n',
    )
    done = run_cip("run", "--manifest", str(path), "--output", "json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["dry_run"] is True
    assert document["ok"] is True
    assert document["edges"]["copy"] == 1
    [image] = document["images"]
    assert image["image"] == "app"
    assert image["digest"] == app.digest
    assert image["destinations"] == {
        "copy": [
            {
                "registry": mirror.host,
                "tags": ["2.0"],
                "tag_moves": [],
                "error": None,
                "signature": None,
                "vulnerability": None,
                "attestation": None,
            }
        ],
        "add-tag": [],
        "present": [],
        "lost": [],
        "tag-move": [],
        "failed": [],
        "too-large": [],
        "vulnerable": [],
        "signature-invalid": [],
        "signature-missing": [],
        "provenance-invalid": [],
        "provenance-missing": [],
    }
    assert document["promotion"] is None and document["summary"]["edges"] == 1
    # Requests per host, method and status: the mirror was only read.
    reads = {"GET 200", "GET 404", "HEAD 404", "HEAD 200"}
    assert set(document["requests"][mirror.host]) <= reads


def test_requests_counted_are_those_the_registries_received(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    """Loopback registries speak plain HTTP, found by trying HTTPS first: that try is how the
    scheme is chosen, not a failed request, so the counts (JSON and phase lines) match the
    registries' own access logs and show no request without an answer."""
    staging, mirror = registry_factory(), registry_factory()
    images = [oci_image(40 + i) for i in range(3)]
    push_images(staging, [(f"img{i}", image, "src") for i, image in enumerate(images)])
    dmaps = "".join(
        f'- name: img{i}\n  dmap:\n    "{image.digest}": ["1.0"]\n'
        for i, image in enumerate(images)
    )
    path = manifest(tmp_path / "m.yaml", staging.host, [mirror.host], dmaps)
    for confirm in ((), ("--confirm",)):
        marks = {lab.host: (lab, lab.mark()) for lab in (staging, mirror)}
        done = run_cip("run", "--manifest", str(path), *confirm, "--output=json")
        assert done.returncode == 0, done.stderr
        requests = json.loads(done.stdout)["requests"]
        assert set(requests) == set(marks)
        for host, (lab, mark) in marks.items():
            assert not any(key.endswith("no answer") for key in requests[host]), requests
            assert sum(requests[host].values()) == len(lab.requests_since(mark)), host
        in_phases = sum(int(n) for n in re.findall(r"; (\d+) registry requests", done.stderr))
        assert in_phases == sum(sum(table.values()) for table in requests.values())


def test_fully_present_run_costs_one_request_per_tag_plus_one_per_repository(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging, mirror = registry_factory(), registry_factory()
    images = [oci_image(10 + i) for i in range(6)]
    items = []
    dmaps = ""
    for i, image in enumerate(images):
        items.append((f"img{i}", image, "a"))
        items.append((f"img{i}", image, "b"))
        dmaps += f'- name: img{i}\n  dmap:\n    "{image.digest}": ["a", "b"]\n'
    push_images(staging, items)
    push_images(mirror, items)
    path = manifest(tmp_path / "m.yaml", staging.host, [mirror.host], dmaps)
    mark_staging, mark_mirror = staging.mark(), mirror.mark()
    done = run_cip("run", "--manifest", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Edges 12: copy 0, add-tag 0, present 12" in done.stdout
    budget = 12 + 6  # destination tags + destination repositories
    mirror_requests = [e for e in mirror.requests_since(mark_mirror) if e.path != "/v2/"]
    assert len(mirror_requests) <= budget
    assert staging.requests_since(mark_staging) == []  # nothing to copy: source never read


def test_unreachable_destination_fails_only_its_edges(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging, mirror = registry_factory(), registry_factory()
    app = oci_image(20)
    push_images(staging, [("app", app, "1")])
    path = manifest(
        tmp_path / "m.yaml",
        staging.host,
        [mirror.host, "127.0.0.1:9/prod"],  # port 9 (discard): nothing listens
        f'- name: app\n  dmap:\n    "{app.digest}": ["1"]\n',
    )
    done = run_cip("run", "--manifest", str(path), "--retry-timeout=2s", "--retry-max-backoff=1s")
    assert done.returncode == 1
    assert "failed    127.0.0.1:9 unreachable (connection refused): 1 destination not promoted" in (
        done.stdout
    )
    assert "copy 1," in done.stdout
    assert "Traceback" not in done.stderr


def test_registry_snapshot_matches_what_was_pushed_and_skopeo(
    lab_registry: LabRegistry, tmp_path: Path
) -> None:
    app, multi = oci_image(30), oci_index(31)
    push_images(
        lab_registry,
        [("team/app", app, "1.0"), ("team/app", app, "latest"), ("team/multi", multi, "v2"),
         ("other/x", oci_image(32), "z")],
    )  # fmt: skip
    done = run_cip("run", f"--snapshot={lab_registry.host}/team")
    assert done.returncode == 0, done.stderr
    children = sorted(c.digest for c in multi.children)
    expected = [
        "- name: app",
        "  dmap:",
        f'    "{app.digest}": ["1.0", "latest"]',
        "- name: multi",
        "  dmap:",
        *sorted(
            [f'    "{d}": []' for d in children] + [f'    "{multi.digest}": ["v2"]'],
        ),
    ]
    assert done.stdout.splitlines() == expected
    minimal = run_cip("run", f"--snapshot={lab_registry.host}/team", "--minimal-snapshot")
    assert all(c not in minimal.stdout for c in children)
    only = run_cip(
        "run", f"--snapshot={lab_registry.host}/team", "--snapshot-tag=v2", "--output=csv"
    )
    assert only.stdout.splitlines()[-1] == f"multi@{multi.digest},multi:v2"
    skopeo = subprocess.run(
        ["skopeo", "list-tags", "--tls-verify=false", f"docker://{lab_registry.host}/team/app"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert sorted(json.loads(skopeo.stdout)["Tags"]) == ["1.0", "latest"]


def test_diff_selection_plans_only_changed_digests(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging, mirror = registry_factory(), registry_factory()
    old, new = oci_image(40), oci_image(41)
    push_images(staging, [("app", old, "1"), ("app", new, "2")])
    repo = tmp_path / "repo"
    path = manifest(
        repo / "m.yaml",
        staging.host,
        [mirror.host],
        f'- name: app\n  dmap:\n    "{old.digest}": ["1"]\n',
    )

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)

    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base", "--allow-empty")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "old")
    nothing = run_cip("run", "--manifest", str(path), "--diff-base", "HEAD")
    assert nothing.returncode == 0
    assert "Edges 0:" in nothing.stdout
    path.write_text(path.read_text() + f'    "{new.digest}": ["2"]\n')
    changed = run_cip("run", "--manifest", str(path), "--diff-base", "HEAD")
    assert changed.returncode == 0, changed.stderr
    assert new.digest[7:19] in changed.stdout
    assert old.digest[7:19] not in changed.stdout
    everything = run_cip("run", "--manifest", str(path), "--diff-base", "HEAD~1")
    assert old.digest[7:19] in everything.stdout
    missing = run_cip("run", "--manifest", str(path), "--diff-base", "no-such-ref")
    assert missing.returncode == 2
    assert "git ref 'no-such-ref' not found" in missing.stderr
    only = run_cip("run", "--manifest", str(path), "--image", "nope")
    assert only.returncode == 2  # a name no manifest lists is a typo, not an empty selection
    assert "--image: no image named 'nope'" in only.stderr
