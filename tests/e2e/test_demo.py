"""The README's first command: the embedded demo promotes between two local OCI layouts."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_demo_promotes_then_finds_everything_present() -> None:
    before = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "examples"],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    done = subprocess.run(
        [str(REPO / "scripts" / "demo")], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "Edges 3: copy 3, add-tag 0, present 0, lost 0, tag-move 0, failed 0 (promoted)" in out
    assert "Edges 3: copy 0, add-tag 0, present 3" in out
    assert (
        '"sha256:febf93b20357fcbe79aa66241929f087606126957c1ae6c4d020d18953f4336d": ["2.1"]' in out
    )
    after = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "examples"],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    assert after == before  # the checkout stays clean
