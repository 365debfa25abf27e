"""The `cip` command as a user runs it: output, errors without tracebacks, exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cip import __version__
from tests.cli import run_cip
from tests.unit.conftest import D1, D2, write

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


cip = run_cip


def test_version_and_help() -> None:
    assert cip("--version").stdout.strip() == f"cip {__version__}"
    help_text = cip("run", "--help").stdout
    for flag in (
        "--manifest",
        "--thin-manifest-dir",
        "--parse-only",
        "--confirm",
        "--snapshot",
        "--snapshot-tag",
        "--minimal-snapshot",
        "--manifest-based-snapshot-of",
        "--output",
    ):
        assert flag in help_text
    assert "Examples:" in help_text
    assert "Exit codes:" in help_text


def test_parse_only_summary_of_the_examples() -> None:
    done = cip(
        "run", "--manifest", "examples/plain.yaml", "--thin-manifest-dir", "examples/thin",
        "--parse-only",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(":", 1) for line in done.stdout.strip().splitlines())
    assert {k: int(v.replace(",", "")) for k, v in lines.items()} == {
        "Manifests": 2,
        "Image entries": 3,
        "Unique digests": 4,
        "Tag entries": 6,
        "Destination registries": 3,
        "Destination repositories": 5,
        "Promotion edges": 10,
        "Warnings": 0,
    }


def test_parse_only_json(tmp_path: Path) -> None:
    manifest = write(
        tmp_path / "m.yaml",
        "registries:\n- name: gcr.io/s\n  src: true\n- name: gcr.io/p\n"
        f'images:\n- name: a\n  dmap:\n    "{D1}": ["1"]\n- name: b\n  dmap:\n',
    )
    done = cip("run", "--manifest", str(manifest), "--parse-only", "--output", "json")
    assert done.returncode == 0
    document = json.loads(done.stdout)
    assert document["summary"]["edges"] == 1
    assert document["summary"]["destination_repositories"] == 2
    [warning] = document["warnings"]
    assert (warning["file"], warning["line"], warning["severity"]) == (str(manifest), 9, "warning")
    assert document["errors"] == [] and document["images"] == []
    assert "null dmap" in done.stderr


def test_invalid_manifest_exit_2_without_traceback(tmp_path: Path) -> None:
    manifest = write(
        tmp_path / "m.yaml",
        "registries:\n- name: gcr.io/s\n- name: gcr.io/p\n"
        'images:\n- name: a\n  dmap:\n    "sha256:12": [1.10]\n',
    )
    done = cip("run", "--manifest", str(manifest), "--parse-only")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert (
        lines[0] == f"{manifest}:2:1: error: source registry must be set (one entry with src: true)"
    )
    assert lines[1] == f"{manifest}:7:5: error: invalid digest: sha256:12 (image=a)"
    assert lines[-1] == "2 manifest errors; nothing was read from any registry"


@pytest.mark.parametrize(
    "args",
    [
        ["--parse-only", "--output", "yaml"],
        ["--manifest-based-snapshot-of", "gcr.io/p", "--output", "json"],
        ["--manifest-based-snapshot-of", "gcr.io/p", "--output", "text"],
        ["--parse-only", "--output", "xml"],
        ["--parse-only", "--confirm"],
        ["--minimal-snapshot"],
        ["--parse-only", "--retry-timeout=5"],  # Go durations need a unit
        ["--parse-only", "--retry-timeout=-1m"],
        ["--parse-only", "--retry-max-backoff=0s"],
        ["--parse-only", "--retry-max-backoff=1 minute"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    done = cip("run", "--manifest", "examples/plain.yaml", *args)
    assert done.returncode == 2
    assert "Error:" in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_manifest_file_exit_2() -> None:
    done = cip("run", "--manifest", "nope.yaml", "--parse-only")
    assert done.returncode == 2
    assert "nope.yaml: error: file not found" in done.stderr


def snapshot_dir(tmp_path: Path) -> Path:
    write(
        tmp_path / "manifests" / "a" / "promoter-manifest.yaml",
        "registries:\n- name: gcr.io/s\n  src: true\n- name: reg.io/prod/a\n- name: reg.io/prodx\n",
    )
    write(
        tmp_path / "images" / "a" / "images.yaml",
        f'- name: zed\n  dmap:\n    "{D2}": ["b", "a"]\n    "{D1}": []\n'
        f'- name: app\n  dmap:\n    "{D1}": ["1.0"]\n',
    )
    write(
        tmp_path / "other.yaml",
        "registries:\n- name: gcr.io/t\n  src: true\n- name: reg.io/prod\n"
        f'images:\n- name: top\n  dmap:\n    "{D1}": ["v1"]\n',
    )
    return tmp_path


def test_manifest_based_snapshot_yaml_over_plain_and_thin(tmp_path: Path) -> None:
    root = snapshot_dir(tmp_path)
    done = cip(
        "run", "--thin-manifest-dir", str(root), "--manifest", str(root / "other.yaml"),
        "--manifest-based-snapshot-of", "reg.io/prod",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "- name: a/app\n"
        "  dmap:\n"
        f'    "{D1}": ["1.0"]\n'
        "- name: a/zed\n"
        "  dmap:\n"
        f'    "{D1}": []\n'
        f'    "{D2}": ["a", "b"]\n'
        "- name: top\n"
        "  dmap:\n"
        f'    "{D1}": ["v1"]\n'
    )


def test_manifest_based_snapshot_csv_matches_whole_segments(tmp_path: Path) -> None:
    root = snapshot_dir(tmp_path)
    done = cip(
        "run", "--thin-manifest-dir", str(root), "--manifest-based-snapshot-of", "reg.io/prod/a",
        "--output", "csv",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"app@{D1},app:1.0",
        f"zed@{D1},-",
        f"zed@{D2},zed:a",
        f"zed@{D2},zed:b",
    ]


def test_snapshot_output_pastes_into_images_yaml(tmp_path: Path) -> None:
    root = snapshot_dir(tmp_path)
    done = cip("run", "--thin-manifest-dir", str(root), "--manifest-based-snapshot-of", "reg.io")
    pasted = tmp_path / "pasted"
    write(
        pasted / "manifests" / "x" / "promoter-manifest.yaml",
        "registries:\n- name: reg.io\n  src: true\n- name: mirror.io\n",
    )
    write(pasted / "images" / "x" / "images.yaml", done.stdout)
    again = cip(
        "run", "--thin-manifest-dir", str(pasted), "--manifest-based-snapshot-of", "mirror.io"
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout == done.stdout


def test_missing_ca_file_is_a_usage_error() -> None:
    done = cip("run", "--manifest", "examples/plain.yaml", "--ca-file", "/nonexistent.pem")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "/nonexistent.pem" in done.stderr


def test_unwritable_layout_destination_fails_its_edges_without_traceback(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    shutil.copytree(EXAMPLES / "demo", demo)
    (demo / "production").write_text("a file where the layout folder should be\n")
    done = cip("run", "--manifest", str(demo / "promoter-manifest.yaml"), "--confirm")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "failed    hello@" in done.stdout
    assert str(demo / "production") in done.stdout


def test_retry_flags_take_go_durations() -> None:
    for value in ("90s", "5m", "1h30m", "250ms", "0"):
        done = cip(
            "run", "--manifest", "examples/plain.yaml", "--parse-only", "--retry-timeout", value
        )
        assert done.returncode == 0, done.stderr
    done = cip("run", "--manifest", "examples/plain.yaml", "--parse-only", "--retry-timeout=5")
    assert "--retry-timeout" in done.stderr and "missing unit" in done.stderr
