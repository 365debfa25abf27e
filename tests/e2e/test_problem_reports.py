"""What a promotion with problems writes and says, against real registries: a refused tag move
leaves its repository untouched, lost digests say why, and names are never ambiguous."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.e2e.conftest import push_images, run_cip, writes
from tests.e2e.test_dry_run import LOST, manifest
from tests.e2e.test_promote import dmap, skopeo_raw
from tests.lab.images import oci_image, oci_index
from tests.lab.registry_lab import LabRegistry
from tests.unit.conftest import write


def test_a_refused_tag_move_writes_nothing_to_that_repository_and_others_proceed(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging, mirror_a, mirror_b = registry_factory(), registry_factory(), registry_factory()
    app, other = oci_image(1, layer_size=100_000), oci_image(2)
    push_images(staging, [("app", app, "1.0")])
    push_images(mirror_b, [("prod/app", other, "1.0")])  # 1.0 is already another release
    path = manifest(
        tmp_path / "m.yaml",
        staging.host,
        [f"{mirror_a.host}/prod", f"{mirror_b.host}/prod"],
        dmap("app", app, "1.0", "latest"),
    )
    marks = mirror_a.mark(), mirror_b.mark()
    done = run_cip("run", "--manifest", str(path), "--confirm")
    assert done.returncode == 1, done.stdout + done.stderr
    assert writes(mirror_b, marks[1]) == []  # no blob, no untagged manifest, no "latest"
    assert f"{mirror_b.host}/prod/app:1.0 is {other.digest}" in done.stdout
    assert (
        "refused, tags never move; nothing written there for this digest (held back: latest)"
        in done.stdout
    )
    assert "Edges 4: copy 2, add-tag 0, present 0, lost 0, tag-move 2, failed 0" in done.stdout
    for tag in ("1.0", "latest"):  # the other destination proceeded
        assert skopeo_raw(f"{mirror_a.host}/prod/app:{tag}") == app.manifest


def test_a_lost_child_of_a_listed_index_says_so_and_lines_name_repositories(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging, mirror = registry_factory(), registry_factory()
    logger = oci_index(7)
    amd = logger.children[0]
    push_images(staging, [("logger", logger, "parent")])
    path = manifest(
        tmp_path / "images.yaml",
        staging.host,
        [mirror.host, "127.0.0.1:9/prod"],  # port 9 (discard): nothing listens
        dmap("logger", logger, "parent")  # its digest on line 9
        + dmap("logger-amd", amd, "child_amd")  # listed under a name of its own: lost
        + f'- name: gone\n  dmap:\n    "{LOST}": ["1"]\n',
    )
    done = run_cip(
        "run", "--manifest", str(path), "--retry-timeout=2s", "--retry-max-backoff=500ms"
    )
    assert done.returncode == 1, done.stderr
    problems = done.stdout.split("Images:")[0].splitlines()
    assert (
        f"  lost      logger-amd@{amd.digest} ({path}:12:5): in neither "
        f"{staging.host}/logger-amd nor {mirror.host}/logger-amd; "
        f"child of logger@sha256:{logger.digest[7:19]}… listed at {path}:9"
    ) in problems
    assert (
        f"  lost      gone@{LOST} ({path}:15:5): in neither {staging.host}/gone nor "
        f"{mirror.host}/gone"
    ) in problems
    assert (  # the host that takes no connection, once for its three destinations
        "  failed    127.0.0.1:9 unreachable (connection refused): 3 destinations not promoted"
    ) in problems


def test_a_source_that_does_not_answer_fails_its_edges_without_a_traceback(
    lab_registry: LabRegistry, tmp_path: Path
) -> None:
    path = manifest(
        tmp_path / "m.yaml",
        "127.0.0.1:9/staging",  # port 9 (discard): nothing listens
        [lab_registry.host],
        f'- name: app\n  dmap:\n    "{LOST}": ["1"]\n',
    )
    done = run_cip(
        "run", "--manifest", str(path), "--retry-timeout=2s", "--retry-max-backoff=500ms"
    )
    assert done.returncode == 1, done.stderr
    assert (  # the source that does not answer, named as the cause
        "  failed    127.0.0.1:9 unreachable (connection refused): 1 destination not promoted"
    ) in done.stdout.splitlines()
    assert "Traceback" not in done.stderr


def test_image_names_used_by_several_subprojects_are_qualified(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging, mirror = registry_factory(), registry_factory()
    app_a, app_b, tool = oci_image(20), oci_image(21), oci_image(22)
    push_images(staging, [("sp-a/app", app_a, "1"), ("sp-a/tool", tool, "1")])  # app_b: lost
    for project, images in (("sp-a", [app_a, tool]), ("sp-b", [app_b])):
        write(
            tmp_path / "manifests" / project / "promoter-manifest.yaml",
            f"registries:\n- name: {staging.host}/{project}\n  src: true\n"
            f"- name: {mirror.host}/{project}\n",
        )
        names = ["app", "tool"]
        write(
            tmp_path / "images" / project / "images.yaml",
            "".join(dmap(name, image, "1") for name, image in zip(names, images, strict=False)),
        )
    done = run_cip("run", "--thin-manifest-dir", str(tmp_path))
    assert done.returncode == 1, done.stderr
    out = done.stdout
    assert f"  lost      sp-b/app@{app_b.digest} (" in out
    assert f"in neither {staging.host}/sp-b/app nor {mirror.host}/sp-b/app" in out
    assert f"  sp-a/app  {app_a.digest[7:19]}  1  copy 1" in out
    assert f"  sp-b/app  {app_b.digest[7:19]}  1  lost 1" in out
    assert f"  tool      {tool.digest[7:19]}  1  copy 1" in out  # one subproject: as written
