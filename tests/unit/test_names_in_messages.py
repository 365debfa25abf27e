"""Names as messages show them: a URL scheme gets one clear error, and characters a reader cannot
see or tell apart (zero-width spaces, Cyrillic look-alikes) are escaped, never printed raw."""

from __future__ import annotations

from pathlib import Path

from tests.cli import run_cip
from tests.unit.conftest import D1, write

IMAGES = f'- name: app\n  dmap:\n    "{D1}": ["1.0"]\n'


def test_a_registry_written_as_a_url_is_one_error_saying_to_drop_the_scheme(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path / "m.yaml",
        "registries:\n- name: gcr.io/staging\n  src: true\n- name: https://gcr.io/x\n"
        "images:\n" + IMAGES,
    )
    done = run_cip("run", "--manifest", str(path), "--parse-only")
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert lines[0] == (
        f"{path}:4:3: error: registry name https://gcr.io/x has a URL scheme: "
        "drop https:// and write gcr.io/x"
    )
    assert "warning" not in done.stderr  # no "no destination registries" after it
    assert sum(": error: " in line for line in lines) == 1


def test_a_thin_source_written_as_a_url_is_one_error_and_nothing_else(tmp_path: Path) -> None:
    write(
        tmp_path / "manifests" / "sp" / "promoter-manifest.yaml",
        "registries:\n- name: http://127.0.0.1:5000/staging\n  src: true\n- name: gcr.io/prod\n",
    )
    write(tmp_path / "images" / "sp" / "images.yaml", IMAGES)
    done = run_cip("run", "--thin-manifest-dir", str(tmp_path), "--parse-only")
    assert done.returncode == 2
    [error] = [line for line in done.stderr.splitlines() if ": error: " in line]
    assert "drop http:// and write 127.0.0.1:5000/staging" in error
    assert "warning" not in done.stderr


def test_snapshot_flags_with_a_scheme_are_usage_errors() -> None:
    for args in (
        ("--snapshot=https://gcr.io/x",),
        ("--manifest-based-snapshot-of=https://gcr.io/x", "--manifest", "examples/plain.yaml"),
    ):
        done = run_cip("run", *args)
        assert done.returncode == 2, done.stdout
        assert "drop https:// and write gcr.io/x" in done.stderr
        assert done.stdout == ""


def test_invisible_and_look_alike_characters_are_escaped(tmp_path: Path) -> None:
    path = write(
        tmp_path / "m.yaml",
        "registries:\n- name: gcr.io/staging\n  src: true\n- name: gcr\u200b.io/prod\n"
        "images:\n"
        "- name: app\n"
        "  dm\u0430p: {}\n"  # a Cyrillic a
        "- name: tool\n"
        f'  dmap:\n    "{D1}": ["v\u200b1", "1.0\u00a0"]\n',
    )
    done = run_cip("run", "--manifest", str(path), "--parse-only")
    assert done.returncode == 2
    err = done.stderr
    assert 'error: invalid tag: "v\\u200b1" (image=tool' in err
    assert 'error: invalid tag: "1.0\\xa0" (image=tool' in err
    assert 'unknown field "dm\\u0430p" in an image' in err
    assert 'invalid registry name: "gcr\\u200b.io/prod"' in err
    assert "\u200b" not in err and "\u0430" not in err and "\u00a0" not in err
