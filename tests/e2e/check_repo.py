"""A pull request in a temporary git repository of thin manifests, against real registries.

The base commit promotes `app` (1.0, latest) and `tool` (0.1) from staging to production, and
production already holds them, as after the last promotion job. A test edits the working tree
(or commits) and runs `cip check` from the repository, as a presubmit job does.
"""

from __future__ import annotations

import subprocess
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.cli import run_cip
from tests.e2e.conftest import push_images
from tests.lab.images import Image, oci_image, oci_index
from tests.lab.registry_lab import LabRegistry

MIB = 1024 * 1024
IMAGES = "k8s/images/team/images.yaml"
MANIFEST = "k8s/manifests/team/promoter-manifest.yaml"


def entry(name: str, *digests: tuple[Image, list[str]]) -> str:
    lines = [f"- name: {name}", "  dmap:"]
    for image, tags in digests:
        listed = ", ".join(f'"{t}"' for t in tags)
        lines.append(f'    "{image.digest}": [{listed}]')
    return "\n".join(lines) + "\n"


@dataclass
class PullRequest:
    root: Path
    staging: LabRegistry
    production: LabRegistry
    app: Image  # promoted at the base as 1.0 and latest
    tool: Image  # promoted at the base as 0.1
    new: Image  # in staging, not yet in any manifest: a good addition
    base: str  # the base commit

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(self.root), "-c", "user.name=t", "-c", "user.email=t@t", *args],
            check=True,
            capture_output=True,
            text=True,
        )
        return done.stdout.strip()

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-qm", message)
        return self.git("rev-parse", "HEAD")

    def write_images(self, text: str) -> None:
        (self.root / IMAGES).write_text(text)

    def base_images(self) -> str:
        return entry("app", (self.app, ["1.0", "latest"])) + entry("tool", (self.tool, ["0.1"]))

    def line_of(self, text: str, path: str = IMAGES) -> int:
        lines = (self.root / path).read_text().splitlines()
        return next(n for n, line in enumerate(lines, 1) if text in line)

    def check(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cip(
            "check", "--thin-manifest-dir=k8s", "--diff-base", self.base, *args, cwd=self.root
        )

    def normalise(self, text: str) -> str:
        """Registry ports and commit ids differ per run; golden files hold placeholders."""
        for name, lab in (("STAGING", self.staging), ("PRODUCTION", self.production)):
            text = text.replace(lab.host, name)
        head = self.git("rev-parse", "HEAD")
        for commit, name in ((self.base, "BASE"), (head, "HEAD")):
            text = text.replace(commit, f"{name}_COMMIT").replace(commit[:12], f"{name}_SHORT")
        return text

    def delete_manifest(self, repository: str, digest: str) -> None:
        """Remove a manifest from staging behind the index that lists it (the lab enables
        deletes), so an index with a missing child can be tested."""
        request = urllib.request.Request(
            f"http://{self.staging.host}/v2/{repository}/manifests/{digest}", method="DELETE"
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 202


def open_pull_request(factory: Callable[..., LabRegistry], root: Path) -> PullRequest:
    staging, production = factory(), factory()
    app, tool, new = oci_image(80), oci_image(81), oci_index(82)
    push_images(
        staging,
        [("staging/app", app, "1.0"), ("staging/tool", tool, "0.1"), ("staging/app", new, "2.0")],
    )
    push_images(
        production,
        [("prod/app", app, "1.0"), ("prod/app", app, "latest"), ("prod/tool", tool, "0.1")],
    )
    (root / "k8s" / "manifests" / "team").mkdir(parents=True)
    (root / "k8s" / "images" / "team").mkdir(parents=True)
    (root / MANIFEST).write_text(
        f"registries:\n- name: {staging.host}/staging\n  src: true\n"
        f"- name: {production.host}/prod\n"
    )
    pr = PullRequest(root, staging, production, app, tool, new, base="")
    pr.write_images(pr.base_images())
    (root / "README.md").write_text("manifests\n")
    pr.git("init", "-q")
    pr.base = pr.commit("base")
    return pr
