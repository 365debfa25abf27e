"""skopeo as the benchmark peer, run so that it gets a fair, cold start.

As root skopeo keeps a blob-info cache under /var/lib/containers whatever HOME is, and that
cache decides whether it mounts blobs; so it runs as the unprivileged user 65534 with HOME and
TMPDIR in a fresh temp dir it owns (an empty cache for cold runs). It always gets `--all`
(every platform of an index, else the tag's digest changes) and `--preserve-digests`, so it does
the same work as cip. Plain HTTP on loopback needs the `--*-tls-verify=false` flags.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

NOBODY = 65534
SKOPEO = "skopeo"


class SkopeoHome:
    """A temp dir owned by user 65534, used as HOME and TMPDIR of one skopeo "machine"."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="cip-bench-skopeo-"))
        os.chown(self.path, NOBODY, NOBODY)
        self.path.chmod(0o755)

    def readable(self, source: Path) -> Path:
        """A copy of `source` that user 65534 can read."""
        target = self.path / source.name
        shutil.copyfile(source, target)
        target.chmod(0o644)
        return target

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def argv(self, *args: str) -> list[str]:
        return [
            "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
            "env", f"HOME={self.path}", f"TMPDIR={self.path}", SKOPEO, *args,
        ]  # fmt: skip


def sync_argv(home: SkopeoHome, sync_yaml: Path, destination: str) -> list[str]:
    """`skopeo sync` of the tags a YAML names into `destination` (`host:port/prefix`)."""
    return home.argv(
        "sync", "--all", "--preserve-digests", "--src", "yaml", "--dest", "docker",
        "--src-tls-verify=false", "--dest-tls-verify=false",
        str(home.readable(sync_yaml)), destination,
    )  # fmt: skip


def copy_argv(home: SkopeoHome, source: str, destination: str) -> list[str]:
    """`skopeo copy` of one tagged image between two registries."""
    return home.argv(
        "copy", "--all", "--preserve-digests",
        "--src-tls-verify=false", "--dest-tls-verify=false",
        f"docker://{source}", f"docker://{destination}",
    )  # fmt: skip


def version() -> str:
    try:
        done = subprocess.run([SKOPEO, "--version"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "not installed"
    return done.stdout.strip().removeprefix("skopeo version ").strip()
