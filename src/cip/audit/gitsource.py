"""The manifest repository, followed with git: the newest commit of a branch, exported to a folder.

The auditor runs for months while the manifests change with every merged pull request, so it
follows their repository instead of a copy baked into its image. git does the work (any URL
git reaches, with git's own credential helpers and SSH keys); a bare repository holds only
the newest commit (shallow fetches), and each commit in use is exported (`git archive`) to a
folder named after it, so the files a decision names never change under it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from cip.errors import CipError

log = logging.getLogger(__name__)

GIT_TIMEOUT_SECONDS = 300.0  # a first clone of a large manifest repository takes a while
_COMMIT = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")  # SHA-1 or SHA-256 object names
_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)


class GitSourceError(CipError):
    """git could not fetch or export the manifests (exit 2 at start-up)."""


def redact(text: str) -> str:
    """`text` with the user and password (or token) of every URL in it replaced by `***`:
    URLs are shown on /healthz and in logs, and git repeats them in its messages."""
    return _USERINFO.sub(r"\g<scheme>***@", text)


@dataclass(frozen=True)
class Export:
    """One commit's manifests on disk: a thin manifest folder or a plain manifest file."""

    commit: str
    folder: Path  # removed when the export is no longer used
    target: Path  # folder/--manifests-path

    @property
    def thin(self) -> bool:
        return self.target.is_dir()


class GitSource:
    """`--manifests-git URL --manifests-branch B --manifests-path P`, in `workdir`."""

    def __init__(self, url: str, branch: str | None, path: str, workdir: Path) -> None:
        self.url = url
        self.branch = branch
        self.path = path.strip("/") or "."
        self.workdir = workdir
        self.repository = workdir / "repository.git"

    @property
    def ref(self) -> str:
        """What is fetched: the branch, or the remote's default branch (its HEAD)."""
        return f"refs/heads/{self.branch}" if self.branch else "HEAD"

    @property
    def shown(self) -> str:
        return f"{redact(self.url)} ({self.branch or 'default branch'})"

    async def fetch(self) -> str:
        """The branch's newest commit, fetched into the bare repository."""
        if not self.repository.exists():
            self.repository.parent.mkdir(parents=True, exist_ok=True)
            await self._git("init", "--quiet", "--bare", str(self.repository), cwd=self.workdir)
        await self._git("fetch", "--quiet", "--no-tags", "--depth=1", "--", self.url, self.ref)
        commit = (await self._git("rev-parse", "--verify", "FETCH_HEAD^{commit}")).strip()
        if not _COMMIT.fullmatch(commit):
            raise GitSourceError(f"{self.shown}: git named no commit for {self.ref}")
        return commit

    async def export(self, commit: str) -> Export:
        """The commit's `--manifests-path`, written to a folder of its own."""
        folder = self.workdir / commit[:12]
        archive = self.workdir / f"{commit[:12]}.tar"
        pathspec = "." if self.path == "." else self.path
        try:
            await self._git(
                "archive", "--format=tar", f"--output={archive}", commit, "--", pathspec
            )
        except GitSourceError as error:
            raise GitSourceError(
                f"{self.shown}: --manifests-path={self.path} is not in commit {commit[:12]}: "
                f"{error.message}"
            ) from None
        try:
            shutil.rmtree(folder, ignore_errors=True)
            with tarfile.open(archive) as tar:
                # The "data" filter refuses links out of the folder, devices and absolute names.
                tar.extractall(folder, filter="data")
        except (OSError, tarfile.TarError) as error:
            raise GitSourceError(f"cannot export commit {commit[:12]}: {error}") from None
        finally:
            archive.unlink(missing_ok=True)
        return Export(commit, folder, folder / self.path)

    async def _git(self, *args: str, cwd: Path | None = None) -> str:
        command = ["git", *args] if cwd is not None else ["git", "-C", str(self.repository), *args]
        # Never ask for a password on a terminal nobody watches; git's credential helpers,
        # SSH keys and GIT_* variables still apply.
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                cwd=cwd,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except FileNotFoundError:
            raise GitSourceError("git is not installed; --manifests-git needs it") from None
        try:
            out, err = await asyncio.wait_for(process.communicate(), GIT_TIMEOUT_SECONDS)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise GitSourceError(
                f"git {args[0]} of {self.shown} took longer than {GIT_TIMEOUT_SECONDS:.0f} s"
            ) from None
        if process.returncode != 0:
            lines = [line for line in err.decode(errors="replace").splitlines() if line.strip()]
            said = redact(lines[-1].strip()) if lines else f"exit code {process.returncode}"
            raise GitSourceError(f"git {args[0]} of {self.shown}: {said}")
        return out.decode(errors="replace")
