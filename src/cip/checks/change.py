"""What a pull request changes: the head manifests, and what is new or gone since the base.

The head is the working tree or a commit; the base is always a commit. Only the manifest files
the change touched are read at the base, since a file the change left alone is the same on
both sides: for the Kubernetes corpus with one changed image that is one pair of files, not
150. Digests are selected as `cip run --diff-base` selects them (lines added or changed), and
a selected digest is *added* when one of its destination repositories did not get it at the
base (a tag added to an image already promoted is a change, not an addition).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cip.errors import UsageError
from cip.manifests import git_diff
from cip.manifests.git_tree import read_commit
from cip.manifests.load import LoadResult, load_all
from cip.manifests.tree import load_commit, repo_path
from cip.model.manifest import PromoterManifest
from cip.plan.edges import EdgeGroup, build_edges
from cip.plan.selection import select_changed, select_images


@dataclass(frozen=True)
class Revision:
    """One side of the change: a commit, or the working tree (`commit` None)."""

    ref: str | None
    commit: str | None

    def describe(self) -> str:
        if self.commit is None:
            return "working tree"
        if not self.ref or self.commit.startswith(self.ref):  # a commit id names itself
            return self.commit[:12]
        return f"{self.ref} ({self.commit[:12]})"


@dataclass(frozen=True)
class ChangeSpec:
    """The flags that say which manifests, which base and which head."""

    plain_files: tuple[str, ...] = ()
    thin_dirs: tuple[str, ...] = ()
    diff_base: str | None = None
    diff_since: str | None = None
    prow_diff: bool = False
    head: str | None = None
    images: tuple[str, ...] = ()


@dataclass
class Change:
    root: str  # the repository's top folder
    base: Revision
    head: Revision
    loaded: LoadResult  # the head manifests and every problem loading them
    groups: list[EdgeGroup]  # every edge group of the head (empty when it does not load)
    selected: list[EdgeGroup]  # digests on lines the change added or changed
    added: list[EdgeGroup]  # selected digests new to at least one destination repository
    base_manifests: list[PromoterManifest]  # the base side of the files the change touched
    touched: frozenset[str]  # repository-relative paths the change touched
    # selected digests a promotion would write to: new to a destination repository, or with a
    # tag that repository did not get at the base (`added` plus re-tagged digests)
    written: list[EdgeGroup] = field(default_factory=list)

    @property
    def loads(self) -> bool:
        return not self.loaded.errors

    def relative(self, path: str) -> str:
        """A manifest path relative to the repository (what CI annotations and SARIF want)."""
        return repo_path(self.root, path) or path


def repository_key(registry: str, image: str) -> str:
    """The full repository path, host lower-cased: two manifests naming one repository with a
    different split between registry path and image name are seen as the same."""
    host, sep, rest = registry.partition("/")
    return f"{host.lower()}{sep}{rest}/{image}"


def _existing_folder(paths: Sequence[str]) -> str:
    """Where to ask git for the repository: the first path named, or the nearest folder above
    it that exists (with --head, a folder may exist only in the commit)."""
    if not paths:
        return os.getcwd()
    folder = os.path.abspath(paths[0])
    while not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    return folder


def read_change(spec: ChangeSpec, env: Mapping[str, str]) -> Change:
    """Resolve base and head (a missing ref is a usage error, exit 2), load the head, select."""
    root = git_diff.repository_root(_existing_folder([*spec.thin_dirs, *spec.plain_files]))
    if spec.diff_base is not None:
        base_ref = spec.diff_base
    elif spec.diff_since is not None:
        base_ref = git_diff.ref_since(root, spec.diff_since)
    else:
        base_ref = git_diff.prow_ref(env)
    base = Revision(base_ref, git_diff.resolve_ref(root, base_ref))
    head = Revision(spec.head, git_diff.resolve_ref(root, spec.head) if spec.head else None)
    pathspecs = [_pathspec(root, p) for p in (*spec.thin_dirs, *spec.plain_files)]
    plain = {_pathspec(root, p) for p in spec.plain_files}
    if head.commit is not None:
        tree = read_commit(root, head.commit, pathspecs, plain)
        loaded = load_commit(spec.plain_files, spec.thin_dirs, tree)
    else:
        loaded = load_all(list(spec.plain_files), list(spec.thin_dirs))
    assert base.commit is not None
    touched = frozenset(git_diff.changed_paths(root, base.commit, pathspecs, head.commit))
    change = Change(root, base, head, loaded, [], [], [], [], touched)
    if not change.loads:
        return change
    manifests = loaded.manifests
    change.groups = build_edges(manifests)
    if spec.images:
        _check_image_names(change.groups, spec.images)
    changed: dict[str, set[int]] = {}
    if touched:  # nothing changed: no diff to ask git for
        files = sorted({m.manifest_file for m in manifests} | {m.images_file for m in manifests})
        changed = git_diff.changed_lines(root, base.commit, files, head.commit)
    selected = select_changed(manifests, change.groups, changed)
    change.selected = select_images(selected, spec.images) if spec.images else selected
    base_tree = read_commit(root, base.commit, pathspecs, plain)
    change.base_manifests = load_commit(
        spec.plain_files, spec.thin_dirs, base_tree, wanted=touched.__contains__
    ).manifests
    change.added, change.written = _added(change)
    return change


def _pathspec(root: str, path: str) -> str:
    relative = repo_path(root, path)
    if relative is None:
        raise UsageError(f"{path} is outside the git repository {root}")
    return relative or "."


def _check_image_names(groups: Sequence[EdgeGroup], wanted: Sequence[str]) -> None:
    known = sorted({group.image for group in groups})
    unknown = [name for name in dict.fromkeys(wanted) if name not in known]
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, known, n=1)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        noun = "image" if len(unknown) == 1 else "images"
        raise UsageError(f"--image: no {noun} named {', '.join(hints)} in the manifests")


def _touched(change: Change, manifest: PromoterManifest) -> bool:
    return (
        change.relative(manifest.manifest_file) in change.touched
        or change.relative(manifest.images_file) in change.touched
    )


def _added(change: Change) -> tuple[list[EdgeGroup], list[EdgeGroup]]:
    """Selected groups whose digest one of their destination repositories lacked at the base,
    and those a promotion writes to (a new digest, or a new tag of it): from the base side of
    touched files, plus the untouched head files (the same at the base)."""
    wanted = {repository_key(d.name, g.image) for g in change.selected for d in g.destinations}
    if not wanted:
        return [], []
    before: dict[str, dict[str, set[str]]] = {}  # repository -> digest -> tags
    untouched = [m for m in change.loaded.manifests if not _touched(change, m)]
    for manifest in [*change.base_manifests, *untouched]:
        for spec in manifest.destinations:
            for image in manifest.images:
                key = repository_key(spec.name, image.name)
                if key in wanted:
                    for digest, tags in image.dmap.items():
                        before.setdefault(key, {}).setdefault(digest, set()).update(tags)
    added: list[EdgeGroup] = []
    written: list[EdgeGroup] = []
    for group in change.selected:
        at_base = [before.get(repository_key(d.name, group.image), {}) for d in group.destinations]
        if any(group.digest not in digests for digests in at_base):
            added.append(group)
            written.append(group)
        elif any(set(group.tags) - digests[group.digest] for digests in at_base):
            written.append(group)
    return added, written
