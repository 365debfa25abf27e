"""What a promotion with problems writes and says, against real registries: a refused tag move
leaves its repository untouched, lost digests say why, and names are never ambiguous."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.e2e.conftest import push_images, run_cip, writes
from tests.e2e.test_dry_run import manifest
from tests.e2e.test_promote import dmap, skopeo_raw
from tests.lab.images import oci_image
from tests.lab.registry_lab import LabRegistry


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
