"""Thin directories as checkouts really hold them: folders that cannot be read are errors naming
them (never a subproject silently dropped), and symlinked manifest files are followed."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cli import run_cip, run_cip_bound_by_file_modes
from tests.unit.conftest import D1, D2, write

IMAGES_A = f'- name: foo\n  dmap:\n    "{D1}": ["1.0"]\n'
IMAGES_B = f'- name: bar\n  dmap:\n    "{D2}": ["2.0"]\n'


def parse(root: Path) -> tuple[int, list[str], str]:
    done = run_cip("run", "--thin-manifest-dir", str(root), "--parse-only")
    return done.returncode, done.stderr.splitlines(), done.stdout


@pytest.fixture
def two_projects(thin: Callable[..., Path]) -> Path:
    """Subprojects a (readable) and b, so a dropped b would still let the run succeed."""
    thin("a", IMAGES_A)
    return thin("b", IMAGES_B)


@pytest.fixture
def locked() -> Iterator[Callable[[Path], Path]]:
    """lock(folder): mode 000 until the test ends (then restored, so tmp_path can be removed)."""
    folders: list[Path] = []

    def lock(folder: Path) -> Path:
        folder.chmod(0)
        folders.append(folder)
        return folder

    yield lock
    for folder in folders:
        folder.chmod(0o755)


@pytest.mark.parametrize("side", ["manifests", "images"])
def test_an_unreadable_subproject_folder_is_an_error_naming_it(
    two_projects: Path, locked: Callable[[Path], Path], side: str
) -> None:
    folder = locked(two_projects / side / "b")
    done = run_cip_bound_by_file_modes(
        "run", "--thin-manifest-dir", str(two_projects), "--parse-only"
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{folder}: error: cannot read folder: Permission denied" in done.stderr.splitlines()
    assert "warning" not in done.stderr
    assert "Traceback" not in done.stderr


def test_a_folder_that_is_a_symlink_loop_is_an_error_even_for_root(two_projects: Path) -> None:
    loop = two_projects / "manifests" / "c"
    loop.symlink_to("c")
    code, err, _ = parse(two_projects)
    assert code == 2
    assert err[0] == f"{loop}: error: symlink to c: cannot read: Too many levels of symbolic links"
    assert not [line for line in err if "warning" in line]


def test_symlinked_files_are_followed_wherever_they_point(thin: Callable[..., Path]) -> None:
    root = thin("a", IMAGES_A)
    outside = write(root.parent / f"{root.name}-shared" / "images.yaml", IMAGES_B)
    link_manifest = root / "manifests" / "b" / "promoter-manifest.yaml"
    link_manifest.parent.mkdir(parents=True)
    link_manifest.symlink_to("../a/promoter-manifest.yaml")  # registries shared with a
    (root / "images" / "b").mkdir()
    (root / "images" / "b" / "images.yaml").symlink_to(outside)
    code, err, out = parse(root)
    assert code == 0, err
    assert err == []  # not "manifest given twice": b shares a's registries, not its images
    assert "Manifests:                        2" in out
    assert "Unique digests:                   2" in out


@pytest.mark.parametrize("which", ["manifests/b/promoter-manifest.yaml", "images/b/images.yaml"])
def test_a_broken_symlink_is_one_error_naming_link_and_target(
    two_projects: Path, which: str
) -> None:
    link = two_projects / which
    link.unlink()
    link.symlink_to("../../gone.yaml")
    code, err, _ = parse(two_projects)
    assert code == 2
    assert err[0] == f"{link}: error: symlink to ../../gone.yaml: target not found"
    assert len([line for line in err if ": error: " in line]) == 1
    assert not [line for line in err if "warning" in line]  # nothing more about subproject b


def test_a_symlink_to_a_folder_or_a_fifo_is_refused_without_hanging(
    two_projects: Path,
) -> None:
    link = two_projects / "images" / "b" / "images.yaml"
    link.unlink()
    link.symlink_to(two_projects / "images" / "a")
    code, err, _ = parse(two_projects)
    assert code == 2
    assert err[0] == (
        f"{link}: error: symlink to {two_projects / 'images' / 'a'}: "
        "is a directory, expected a YAML file"
    )
    fifo = two_projects / "pipe"
    os.mkfifo(fifo)
    link.unlink()
    link.symlink_to(fifo)
    code, err, _ = parse(two_projects)  # run_cip's timeout would catch a hang
    assert code == 2
    assert err[0] == (
        f"{link}: error: symlink to {fifo}: is a named pipe (FIFO), expected a YAML file"
    )


def test_registries_file_symlinked_but_images_missing_names_the_images_file(
    thin: Callable[..., Path],
) -> None:
    root = thin("a", IMAGES_A)
    link = write(root / "manifests" / "b" / "x", "")
    link.unlink()
    link.with_name("promoter-manifest.yaml").symlink_to("../a/promoter-manifest.yaml")
    code, err, _ = parse(root)
    assert code == 2
    assert err[0] == (
        f"{root}/manifests/b/promoter-manifest.yaml: error: images file is missing: "
        f"{root}/images/b/images.yaml"
    )
