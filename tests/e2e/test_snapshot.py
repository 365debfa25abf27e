"""`cip run --snapshot` against a real registry: a single repository can be named, and what the
distribution API cannot show is said on stderr, once."""

from __future__ import annotations

from tests.e2e.conftest import push_images, run_cip
from tests.lab.images import oci_image, oci_index
from tests.lab.registry_lab import LabRegistry


def test_snapshot_of_one_repository_lists_it_and_the_repositories_below_it(
    lab_registry: LabRegistry,
) -> None:
    app, sub, neighbour, multi = oci_image(1), oci_image(2), oci_image(3), oci_index(4)
    orphan = oci_image(5)  # pushed by digest only: no tag, no index lists it
    push_images(
        lab_registry,
        [
            ("team/app", app, "1.0"),
            ("team/app", multi, "multi"),
            ("team/app", orphan, None),
            ("team/app/sub", sub, "x"),
            ("team/application", neighbour, "1.0"),  # shares the prefix, not the path
        ],
    )
    done = run_cip("run", f"--snapshot={lab_registry.host}/team/app", "--output=csv")
    assert done.returncode == 0, done.stderr
    children = [c.digest for c in multi.children]
    assert sorted(done.stdout.splitlines()) == sorted(
        [
            f"app@{app.digest},app:1.0",
            f"app@{multi.digest},app:multi",
            *(f"app@{child},-" for child in children),
            f"app/sub@{sub.digest},app/sub:x",
        ]
    )
    assert orphan.digest not in done.stdout  # invisible without a digest listing: said below
    notes = done.stderr.splitlines()
    assert notes == [
        f"note: {lab_registry.host}/team/app is a repository; image names are relative to "
        f"{lab_registry.host}/team",
        f"note: {lab_registry.host}/team/app lists tags, not digests (2 repositories): a digest "
        "with no tag that is no child of a listed index cannot be seen and is not in this "
        "snapshot (only registries with a digest listing, such as Google's, show it)",
    ]


def test_snapshot_of_a_path_says_once_what_it_cannot_see(lab_registry: LabRegistry) -> None:
    push_images(lab_registry, [(f"team/img{i}", oci_image(10 + i), "1") for i in range(3)])
    done = run_cip("run", f"--snapshot={lab_registry.host}/team")
    assert done.returncode == 0, done.stderr
    assert [n for n in done.stderr.splitlines() if n.startswith("note:")] == [
        f"note: {lab_registry.host}/team lists tags, not digests (3 repositories): a digest "
        "with no tag that is no child of a listed index cannot be seen and is not in this "
        "snapshot (only registries with a digest listing, such as Google's, show it)",
    ]
    assert done.stdout.count("- name: img") == 3
