"""Inputs a user gets wrong, or that kpromo reads differently: each a clear answer, not a hang,
a silent no-op or a confusing error."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.cli import run_cip

REPO = Path(__file__).resolve().parents[2]
HELLO = "sha256:f276d35308f97ab98f1aca11033dba59932bec2edacece81a3691fcbcbf695c5"
WEB = "sha256:febf93b20357fcbe79aa66241929f087606126957c1ae6c4d020d18953f4336d"


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "examples" / "demo", tmp_path / "demo")
    return tmp_path / "demo" / "promoter-manifest.yaml"


def test_image_that_matches_nothing_is_a_usage_error_naming_it(demo: Path) -> None:
    done = run_cip("run", "--manifest", str(demo), "--image", "hello", "--image", "helo")
    assert done.returncode == 2
    assert "--image: no image named 'helo'" in done.stderr
    assert "did you mean 'hello'?" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    both = run_cip("run", "--manifest", str(demo), "--image", "x", "--image", "y", "--output=json")
    assert both.returncode == 2
    [error] = json.loads(both.stdout)["errors"]
    assert error["message"] == "--image: no images named 'x', 'y' in the manifests"
    known = run_cip("run", "--manifest", str(demo), "--image", "web", "--output=json")
    assert known.returncode == 0, known.stderr
    assert [i["image"] for i in json.loads(known.stdout)["images"]] == ["web"]


def test_manifest_that_is_a_fifo_is_an_error_not_a_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "promoter.yaml"
    os.mkfifo(fifo)
    # It hung before: opening a FIFO waits for a writer. A hang fails at the timeout.
    done = run_cip("run", "--manifest", str(fifo), "--parse-only", timeout=30)
    assert done.returncode == 2
    assert f"{fifo}: error: is a named pipe (FIFO), expected a YAML file" in done.stderr
    device = run_cip("run", "--manifest", "/dev/zero", "--parse-only", timeout=30)  # endless
    assert device.returncode == 2
    assert "/dev/zero: error: is a device, expected a YAML file" in device.stderr


def test_thin_manifest_dir_that_is_a_file(demo: Path) -> None:
    done = run_cip("run", "--thin-manifest-dir", str(demo), "--parse-only")
    assert done.returncode == 2
    assert f"{demo}: error: is a file, expected a directory" in done.stderr
    missing = run_cip("run", "--thin-manifest-dir", str(demo.parent / "nope"), "--parse-only")
    assert missing.returncode == 2
    assert "thin manifest directory not found" in missing.stderr


@pytest.mark.parametrize("manifests", [["--manifest", "M"], ["--thin-manifest-dir", "D"]])
def test_snapshot_with_manifests_is_a_usage_error(demo: Path, manifests: list[str]) -> None:
    given = [a.replace("M", str(demo)).replace("D", str(demo.parent)) for a in manifests]
    staging = f"oci:{demo.parent / 'staging'}"
    done = run_cip("run", "--snapshot", staging, *given)
    assert done.returncode == 2
    assert "--snapshot reads a registry, not manifests" in done.stderr
    assert done.stdout == ""


def _git(root: Path, *args: str, date: str | None = None) -> None:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    if date is not None:
        env |= {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    subprocess.run(
        ["git", "-c", "user.name=cip", "-c", "user.email=cip@example.com", *args],
        cwd=root, env=env, check=True, capture_output=True,
    )  # fmt: skip


def _history(demo: Path, first_date: str | None) -> None:
    """Two commits: the manifest with hello only, then web added to it."""
    full = demo.read_text()
    demo.write_text(full.split("- name: web")[0])
    root = demo.parent
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "hello", date=first_date)
    demo.write_text(full)
    _git(root, "commit", "-q", "-am", "web")


@pytest.mark.parametrize(
    ("first_date", "base_is"),
    [
        (None, "the oldest commit since 14 days (the window holds the whole history)"),
        ("2000-01-01T00:00:00Z", "the last commit before 14 days"),
    ],
)
def test_manifest_diff_since_picks_its_base_as_kpromo_does(
    demo: Path, first_date: str | None, base_is: str
) -> None:
    _history(demo, first_date)
    done = run_cip("run", "--manifest", str(demo), "--manifest-diff-since=14 days", "--output=json")
    assert done.returncode == 0, done.stderr
    # The base is the first commit either way: only the digest the second commit added is planned.
    assert [i["digest"] for i in json.loads(done.stdout)["images"]] == [WEB]
    assert base_is in done.stderr
