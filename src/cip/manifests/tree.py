"""Loading manifests from a git commit's files, through the same loader as the working tree.

`CommitTree` holds what `cip.manifests.git_tree` read from one commit: file contents and
symbolic links by repository-relative path. The thin layout is discovered from that listing
and every file goes through `load_thin`/`load_plain` with a reader over the tree, so a
commit's manifests are validated exactly as a checkout's would be, and every diagnostic names
the path the user wrote (`DIR/images/p/images.yaml`), which is the path in the pull request.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cip.errors import Diagnostic
from cip.manifests.load import LoadResult, load_plain, load_thin
from cip.manifests.thin import IMAGES_FILE, MANIFEST_FILE
from cip.manifests.yamlnodes import Diagnostics
from cip.model.manifest import PromoterManifest

MAX_LINKS = 8  # as the kernel's ELOOP bound, roughly: a longer chain is a loop


@dataclass(frozen=True)
class CommitTree:
    """Files of one commit below some folders: contents, link targets, and every path listed."""

    commit: str
    root: str  # the repository's top folder, absolute
    files: dict[str, bytes]
    links: dict[str, str]
    paths: frozenset[str] = field(default_factory=frozenset)

    @property
    def short(self) -> str:
        return self.commit[:12]

    def target(self, link: str) -> str:
        """Where the link at `link` points, as a repository-relative path."""
        return posixpath.normpath(posixpath.join(posixpath.dirname(link), self.links[link]))

    def resolve(self, path: str) -> str | None:
        """The file `path` names after following links inside the commit; None if there is none."""
        for _ in range(MAX_LINKS):
            if path in self.files:
                return path
            if path not in self.links:
                return None
            path = self.target(path)
        return None


def repo_path(tree_root: str, path: str) -> str | None:
    """`path` (as the user wrote it, relative to the current folder) relative to the
    repository; None when it lies outside. The folders are resolved, the last name is not, so
    a link in the commit is followed by the commit's rules, not by the working tree's."""
    folder, name = os.path.split(os.path.abspath(path))
    relative = os.path.relpath(os.path.join(os.path.realpath(folder), name), tree_root)
    if relative == os.curdir:
        return ""
    if relative.startswith(os.pardir):
        return None
    return relative.replace(os.sep, "/")


class _TreeReader:
    """The loader's `read` over a commit: paths as the user wrote them, mapped into the tree."""

    def __init__(self, tree: CommitTree) -> None:
        self.tree = tree
        self.paths: dict[str, str] = {}  # path as shown -> repository-relative path

    def show(self, shown: str, relative: str) -> str:
        self.paths[shown] = relative
        return shown

    def __call__(self, path: str, diags: Diagnostics) -> str | None:
        relative = self.paths.get(path)
        found = self.tree.resolve(relative) if relative is not None else None
        if found is None:
            if relative is not None and relative in self.tree.links:
                target = self.tree.links[relative]
                diags.file_error(path, f"symlink to {target}: no such file in commit {self.short}")
            else:
                diags.file_error(path, f"file not found in commit {self.short}")
            return None
        try:
            return self.tree.files[found].decode("utf-8")
        except UnicodeDecodeError as exc:
            diags.file_error(path, f"not UTF-8 text: {exc.reason} at byte {exc.start}")
            return None

    @property
    def short(self) -> str:
        return self.tree.short


Wanted = Callable[[str], bool]  # repository-relative path of a manifest file -> load it?


def load_commit(
    plain_files: Sequence[str],
    thin_dirs: Sequence[str],
    tree: CommitTree,
    *,
    wanted: Wanted | None = None,
) -> LoadResult:
    """The manifests named by `--manifest` and `--thin-manifest-dir`, as `tree` holds them.

    With `wanted`, only manifests one of whose files it accepts are loaded, and nothing is
    said about what the commit lacks: that is how the base side of a change is read.
    """
    diags = Diagnostics()
    read = _TreeReader(tree)
    manifests: list[PromoterManifest] = []
    quiet = wanted is not None
    for path in plain_files:
        relative = repo_path(tree.root, path)
        if relative is None:
            diags.file_error(path, f"is outside the git repository {tree.root}")
            continue
        if quiet and not (wanted and wanted(relative)):
            continue
        if quiet and tree.resolve(relative) is None:
            continue
        _add(manifests, load_plain(read.show(path, relative), diags, read))
    for directory in thin_dirs:
        relative = repo_path(tree.root, directory)
        if relative is None:
            diags.file_error(directory, f"is outside the git repository {tree.root}")
            continue
        for manifest_rel, images_rel, subproject in _discover(
            tree, directory, relative, diags, quiet
        ):
            if wanted is not None and not (wanted(manifest_rel) or wanted(images_rel)):
                continue
            manifest_path = read.show(
                os.path.join(directory, "manifests", subproject, MANIFEST_FILE), manifest_rel
            )
            images_path = read.show(
                os.path.join(directory, "images", subproject, IMAGES_FILE), images_rel
            )
            _add(manifests, load_thin(manifest_path, images_path, diags, read))
    if not plain_files and not thin_dirs and not quiet:
        diags.items.append(Diagnostic("no manifests given: use --manifest or --thin-manifest-dir"))
    return LoadResult(manifests, diags.items)


def _add(manifests: list[PromoterManifest], manifest: PromoterManifest | None) -> None:
    if manifest is not None:
        manifests.append(manifest)


def _discover(
    tree: CommitTree, directory: str, relative: str, diags: Diagnostics, quiet: bool
) -> list[tuple[str, str, str]]:
    """(promoter-manifest.yaml, images.yaml, subproject) of a thin directory in the commit,
    with the layout errors `cip.manifests.load` reports for a working tree."""
    prefix = f"{relative}/" if relative else ""
    manifests_dir, images_dir = f"{prefix}manifests/", f"{prefix}images/"
    below: dict[str, list[str]] = {}  # subproject -> paths below manifests/<p>/
    image_projects: set[str] = set()
    found_any = False
    for path in sorted(tree.paths):
        if path.startswith(manifests_dir):
            found_any = True
            rest = path[len(manifests_dir) :]
            if "/" not in rest:
                if rest == MANIFEST_FILE:
                    diags.file_error(
                        os.path.join(directory, "manifests", rest),
                        f"must be in manifests/<subproject>/{MANIFEST_FILE}",
                    )
                continue  # OWNERS, README.md and other files are not manifests
            name, _, inner = rest.partition("/")
            below.setdefault(name, []).append(inner)
        elif path.startswith(images_dir):
            found_any = True
            rest = path[len(images_dir) :]
            if "/" in rest:
                image_projects.add(rest.partition("/")[0])
    if quiet:
        return [
            (f"{manifests_dir}{name}/{MANIFEST_FILE}", f"{images_dir}{name}/{IMAGES_FILE}", name)
            for name, inner in sorted(below.items())
            if MANIFEST_FILE in inner
        ]
    if not found_any:
        diags.file_error(directory, f"thin manifest directory not found in commit {tree.short}")
        return []
    pairs: list[tuple[str, str, str]] = []
    projects: set[str] = set()
    for name, entries in sorted(below.items()):
        for nested in entries:
            if nested != MANIFEST_FILE and nested.endswith(f"/{MANIFEST_FILE}"):
                diags.file_error(
                    os.path.join(directory, "manifests", name, nested),
                    f"nested manifest: only manifests/<subproject>/{MANIFEST_FILE} is read",
                )
        sub = os.path.join(directory, "manifests", name)
        if MANIFEST_FILE not in entries:
            diags.file_warning(sub, f"skipped: no {MANIFEST_FILE}")
            continue
        projects.add(name)
        manifest_rel = f"{manifests_dir}{name}/{MANIFEST_FILE}"
        images_rel = f"{images_dir}{name}/{IMAGES_FILE}"
        if images_rel not in tree.paths:
            images_path = os.path.join(directory, "images", name, IMAGES_FILE)
            diags.file_error(
                os.path.join(sub, MANIFEST_FILE), f"images file is missing: {images_path}"
            )
            continue
        pairs.append((manifest_rel, images_rel, name))
    for name in sorted(image_projects - projects):
        diags.file_warning(
            os.path.join(directory, "images", name),
            f"no manifests/{name}/{MANIFEST_FILE}: images not promoted",
        )
    if not projects:
        diags.file_error(directory, f"no manifests found (expected manifests/*/{MANIFEST_FILE})")
    return pairs
