"""The manifests of a git commit, read without checking it out.

`cip check --head REF` judges a commit, and the base side of every check is a commit too; a
checkout would disturb the user's working tree (and a CI runner's), so git is asked for the
tree instead. Two processes whatever the number of files: `git ls-tree -r -z` lists the
commit's files below the folders asked for, and one `git cat-file --batch` hands over every
blob. Only files a loader can read are fetched: `promoter-manifest.yaml`, `images.yaml`, the
plain manifests named on the command line, and what symbolic links among them point at.
"""

from __future__ import annotations

import subprocess
from collections.abc import Collection, Sequence

from cip.errors import PlanError
from cip.manifests.git_diff import git
from cip.manifests.thin import IMAGES_FILE, MANIFEST_FILE
from cip.manifests.tree import MAX_LINKS, CommitTree

_REGULAR = ("100644", "100755")
_LINK = "120000"
_NAMES = (MANIFEST_FILE, IMAGES_FILE)


def _list(root: str, commit: str, pathspecs: Sequence[str], *, recursive: bool) -> list[str]:
    """`<mode> <type> <oid>\\t<path>` records of `git ls-tree` (literal paths, from the top)."""
    flags = ("-r",) if recursive else ()
    listing = git(
        root, "--literal-pathspecs", "ls-tree", *flags, "-z", "--full-tree", commit, "--",
        *pathspecs,
    )  # fmt: skip
    return [record for record in listing.split("\0") if record]


def read_commit(
    root: str, commit: str, pathspecs: Sequence[str], plain: Collection[str] = ()
) -> CommitTree:
    """The manifest files of `commit` below `pathspecs` (repo-relative), plus `plain` files.

    Symbolic links are kept as their targets; `CommitTree` follows them inside the commit.
    """
    tree = CommitTree(commit, root, {}, {})
    if not pathspecs:
        return tree
    blobs: dict[str, str] = {}  # path -> object id
    link_ids: dict[str, str] = {}
    paths: set[str] = set()
    for record in _list(root, commit, pathspecs, recursive=True):
        meta, _, path = record.partition("\t")
        mode, kind, oid = meta.split(" ")
        if kind != "blob":
            continue  # submodules: never manifests
        paths.add(path)
        if mode == _LINK:
            link_ids[path] = oid
        elif mode in _REGULAR and (path.rsplit("/", 1)[-1] in _NAMES or path in plain):
            blobs[path] = oid
    tree = CommitTree(commit, root, {}, {}, frozenset(paths))
    _fetch(tree, blobs, link_ids)
    _follow_links(tree)
    return tree


def _fetch(tree: CommitTree, blobs: dict[str, str], links: dict[str, str]) -> None:
    contents = _cat_blobs(tree.root, [*blobs.values(), *links.values()])
    tree.files.update({path: contents[oid] for path, oid in blobs.items()})
    tree.links.update(
        {path: contents[oid].decode("utf-8", "surrogateescape") for path, oid in links.items()}
    )


def _follow_links(tree: CommitTree) -> None:
    """Fetch what links point at, anywhere in the commit, hop by hop; a target that is missing
    or a folder stays unresolved, and the loader says so naming the link."""
    pending = set(tree.links)
    for _ in range(MAX_LINKS):
        targets = {tree.target(link) for link in pending} - tree.files.keys() - tree.links.keys()
        targets = {t for t in targets if not t.startswith("../") and t != ".."}
        if not targets:
            return
        blobs: dict[str, str] = {}
        links: dict[str, str] = {}
        for record in _list(tree.root, tree.commit, sorted(targets), recursive=False):
            meta, _, path = record.partition("\t")
            mode, kind, oid = meta.split(" ")
            if kind == "blob" and path in targets:
                (links if mode == _LINK else blobs)[path] = oid
        _fetch(tree, blobs, links)
        pending = set(links)


def _cat_blobs(root: str, oids: Sequence[str]) -> dict[str, bytes]:
    """Every blob in one `git cat-file --batch`: `<oid> blob <size>\\n<bytes>\\n` per object."""
    wanted = list(dict.fromkeys(oids))
    if not wanted:
        return {}
    try:
        done = subprocess.run(
            ["git", "cat-file", "--batch"],
            cwd=root,
            input=("\n".join(wanted) + "\n").encode(),
            capture_output=True,
            check=False,
        )
    except FileNotFoundError as exc:
        raise PlanError("git is not installed; reading a commit needs it") from exc
    if done.returncode != 0:
        raise PlanError(f"git cat-file --batch in {root}: {done.stderr.decode().strip()}")
    out = done.stdout
    found: dict[str, bytes] = {}
    at = 0
    for oid in wanted:
        header_end = out.index(b"\n", at)
        header = out[at:header_end].decode(errors="replace").split(" ")
        at = header_end + 1
        if len(header) != 3:  # `<oid> missing`: listed a moment ago, so the repository changed
            raise PlanError(f"git cat-file --batch in {root}: object {oid} is missing")
        size = int(header[2])
        found[oid] = out[at : at + size]
        at += size + 1
    return found
