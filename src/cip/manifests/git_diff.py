"""Which manifest lines changed since a git ref: the basis of `--diff-base` selection.

A promotion job after a merge only needs the digests that merge added, not all 20,000 of the
corpus. git is asked for a zero-context diff of the manifest files; the added or changed line
numbers (in today's files) are returned per file, and `cip.plan.selection` maps them to digests.
This is one of the two places cip starts a subprocess (the other: credential helpers).
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
from collections.abc import Mapping, Sequence

from cip.errors import PlanError

log = logging.getLogger(__name__)

_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")
_FILE = re.compile(r"^\+\+\+ (?:b/(.*)|/dev/null)$")


def git(cwd: str, *args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise PlanError("git is not installed; diff selection needs it") from exc
    if done.returncode != 0:
        message = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"
        raise PlanError(f"git {' '.join(args)} in {cwd}: {message}")
    return done.stdout


def repository_root(path: str) -> str:
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    return git(folder, "rev-parse", "--show-toplevel").strip()


def resolve_ref(root: str, ref: str) -> str:
    """The commit of `ref`; a missing one (e.g. in a shallow clone) is a PlanError (exit 2)."""
    try:
        return git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip()
    except PlanError as exc:
        raise PlanError(
            f"git ref {ref!r} not found in {root} (a shallow clone? fetch more history)"
        ) from exc


def ref_since(root: str, when: str) -> str:
    """The base of `--manifest-diff-since=WHEN` (a git date such as `14 days`), as kpromo
    chooses it: the parent of the oldest commit since `when`, which is the last commit before
    it; when the window holds the whole history (no commit before it), the oldest commit of
    the window itself.
    """
    commit = git(root, "rev-list", "-1", f"--before={when}", "HEAD").strip()
    if commit:
        log.info("diff base: %s, the last commit before %s", commit[:12], when)
        return commit
    window = git(root, "rev-list", f"--since={when}", "HEAD").split()
    if not window:
        raise PlanError(f"no commit in {root} to diff against (an empty repository?)")
    oldest = window[-1]
    log.info(
        "diff base: %s, the oldest commit since %s (the window holds the whole history)",
        oldest[:12],
        when,
    )
    return oldest


def prow_ref(env: Mapping[str, str]) -> str:
    """Upstream's `--use-prow-manifest-diff`: the base a Prow job should diff against."""
    job_type = env.get("JOB_TYPE", "")
    if job_type in ("presubmit", "batch"):
        base = env.get("PULL_BASE_SHA")
        if not base:
            raise PlanError(f"JOB_TYPE={job_type} but PULL_BASE_SHA is not set")
        return base
    if job_type == "postsubmit":
        return "HEAD^"
    raise PlanError(
        f"--use-prow-manifest-diff needs JOB_TYPE presubmit, batch or postsubmit (got {job_type!r})"
    )


def changed_lines(
    root: str, ref: str, paths: Sequence[str], head: str | None = None
) -> dict[str, set[int]]:
    """Added or changed line numbers per file (real paths): the working tree against `ref`,
    or the commit `head` against it (`paths` then name files of that commit)."""
    commit = resolve_ref(root, ref)
    relative = [os.path.relpath(os.path.realpath(p), os.path.realpath(root)) for p in paths]
    commits = (commit,) if head is None else (commit, resolve_ref(root, head))
    output = git(
        root, "diff", "--no-color", "--no-ext-diff", "--unified=0", *commits, "--", *relative
    )
    untracked = "" if head is not None else _untracked(root, relative)
    changed: dict[str, set[int]] = {}
    current: set[int] | None = None
    for line in output.splitlines():
        file_match = _FILE.match(line)
        if file_match:
            name = file_match.group(1)
            current = None
            if name is not None:
                current = changed.setdefault(os.path.realpath(os.path.join(root, name)), set())
            continue
        hunk = _HUNK.match(line)
        if hunk and current is not None:
            start, count = int(hunk.group(1)), int(hunk.group(2) or "1")
            current.update(range(start, start + count))
    for name in untracked.splitlines():
        path = os.path.realpath(os.path.join(root, name))
        with open(path, encoding="utf-8", errors="replace") as stream:
            changed[path] = set(range(1, sum(1 for _ in stream) + 2))
    return changed


def _untracked(root: str, relative: Sequence[str]) -> str:
    return git(root, "ls-files", "--others", "--exclude-standard", "--", *relative)


def changed_paths(
    root: str, ref: str, pathspecs: Sequence[str], head: str | None = None
) -> set[str]:
    """Repository-relative paths below `pathspecs` that differ between `ref` and the working
    tree (untracked files included) or the commit `head`, deleted files included."""
    commits = (resolve_ref(root, ref),) if head is None else (resolve_ref(root, ref), head)
    names = git(root, "diff", "--name-only", "--no-renames", "-z", *commits, "--", *pathspecs)
    found = {name for name in names.split("\0") if name}
    if head is None:
        found.update(n for n in _untracked(root, pathspecs).splitlines() if n)
    return found
