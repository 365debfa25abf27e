"""A pull request that adds Debian-like images, for the vulnerability gate in `cip check` and
`cip run`: staging holds APP, MULTI (an index of two platforms) and CLEAN; the base commit
promotes nothing yet, the working tree adds all three."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.cli import run_cip
from tests.e2e.check_repo import entry
from tests.e2e.conftest import push_images
from tests.e2e.vuln_lab import APP, CLEAN, MULTI
from tests.lab.images import Image, oci_image
from tests.lab.registry_lab import LabRegistry

IMAGES = "k8s/images/team/images.yaml"
MANIFEST = "k8s/manifests/team/promoter-manifest.yaml"
PLACEHOLDER = oci_image(73)  # what the base promotes, so the base has an image list


@dataclass
class VulnRepo:
    root: Path
    staging: LabRegistry
    production: LabRegistry
    base: str = ""

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(self.root), "-c", "user.name=t", "-c", "user.email=t@t", *args],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        return done.stdout.strip()

    def line_of(self, image: Image, path: str = IMAGES) -> int:
        lines = (self.root / path).read_text().splitlines()
        return next(n for n, line in enumerate(lines, 1) if image.digest in line)

    def check(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run_cip(
            "check", "--thin-manifest-dir=k8s", "--diff-base", self.base,
            "--checks=vulnerabilities", *args, cwd=self.root, env=env,
        )  # fmt: skip

    def run(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run_cip("run", "--thin-manifest-dir=k8s", *args, cwd=self.root, env=env)


def open_vuln_repo(factory: Callable[..., LabRegistry], root: Path) -> VulnRepo:
    staging, production = factory(), factory()
    push_images(
        staging,
        [("staging/app", APP, "1.0"), ("staging/multi", MULTI, "1.0"),
         ("staging/clean", CLEAN, "1.0"), ("staging/placeholder", PLACEHOLDER, "1")],
    )  # fmt: skip
    push_images(production, [("prod/placeholder", PLACEHOLDER, "1")])
    (root / "k8s" / "manifests" / "team").mkdir(parents=True)
    (root / "k8s" / "images" / "team").mkdir(parents=True)
    (root / MANIFEST).write_text(
        f"registries:\n- name: {staging.host}/staging\n  src: true\n"
        f"- name: {production.host}/prod\n"
    )
    repo = VulnRepo(root, staging, production)
    (root / IMAGES).write_text(entry("placeholder", (PLACEHOLDER, ["1"])))
    repo.git("init", "-q")
    repo.git("add", "-A")
    repo.git("commit", "-qm", "base")
    repo.base = repo.git("rev-parse", "HEAD")
    (root / IMAGES).write_text(
        entry("placeholder", (PLACEHOLDER, ["1"]))
        + entry("app", (APP, ["1.0"]))
        + entry("multi", (MULTI, ["1.0"]))
        + entry("clean", (CLEAN, ["1.0"]))
    )
    return repo
