"""Finding the manifests of a thin directory, and saying exactly why one cannot be read.

Layout (names fixed, as upstream): `manifests/<p>/promoter-manifest.yaml` holds the registries,
`images/<p>/images.yaml` the images. A subproject that cannot be read is an error naming the
folder or file, never a warning that silently drops it: a dropped subproject would promote
nothing and still exit 0. Files may be symbolic links, followed as upstream follows them
(wherever they point) when they resolve to a readable regular file; every message about a link
names the link and its target, once.
"""

from __future__ import annotations

import os
import stat
from typing import Literal

from cip.manifests.yamlnodes import Diagnostics

MANIFEST_FILE = "promoter-manifest.yaml"
IMAGES_FILE = "images.yaml"

FileState = Literal["ok", "missing", "refused"]  # refused: an error was reported


def link_note(path: str) -> str:
    """`symlink to TARGET: ` when `path` is a symbolic link (to prefix a message), else ``."""
    try:
        target = os.readlink(path)
    except OSError:
        return ""
    resolved = os.path.realpath(path)
    named = os.path.normpath(os.path.join(os.path.dirname(path), target))
    through = f" (resolves to {resolved})" if resolved != named else ""
    return f"symlink to {target}{through}: "


def not_regular(mode: int) -> str | None:
    """What a file that is not a regular file is, in words; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def file_state(path: str, diags: Diagnostics) -> FileState:
    """Whether a fixed-name file of the layout is there: an absent file is `missing` (the
    caller decides what that means), a folder on the way that cannot be searched is reported
    here; what the file itself is (a broken link, a FIFO) the loader says when it reads it."""
    try:
        os.lstat(path)
    except FileNotFoundError:
        return "missing"
    except OSError as exc:  # a folder on the way cannot be searched (or is no folder)
        folder = _blocking_folder(path)
        diags.file_error(folder, f"{link_note(folder)}cannot read folder: {exc.strerror}")
        return "refused"
    return "ok"


def _blocking_folder(path: str) -> str:
    """The deepest folder above `path` that exists: the one whose contents cannot be reached."""
    folder = os.path.dirname(path)
    while folder and folder != os.path.dirname(folder):
        try:
            os.stat(folder)
            return folder
        except OSError:
            folder = os.path.dirname(folder)
    return folder


def list_folder(path: str, diags: Diagnostics) -> list[str] | None:
    """The sorted names in a folder, or None (reported) when it cannot be listed."""
    try:
        return sorted(os.listdir(path))
    except OSError as exc:
        diags.file_error(path, f"{link_note(path)}cannot read folder: {exc.strerror}")
        return None


def _inside(directory_real: str, path: str) -> bool:
    real = os.path.realpath(path)
    return real == directory_real or real.startswith(directory_real + os.sep)


def _subfolder(sub: str, diags: Diagnostics) -> bool | None:
    """True for a folder, False for a plain file (OWNERS, README.md: ignored), None when the
    entry cannot be read (reported: a broken link or a loop is a subproject that is lost)."""
    try:
        return stat.S_ISDIR(os.stat(sub).st_mode)
    except FileNotFoundError:
        if os.path.islink(sub):
            diags.file_error(sub, f"{link_note(sub)}target not found")
            return None
        return False  # removed while we looked
    except OSError as exc:
        diags.file_error(sub, f"{link_note(sub)}cannot read: {exc.strerror}")
        return None


def discover_thin(directory: str, diags: Diagnostics) -> list[tuple[str, str]]:
    """(promoter-manifest.yaml, images.yaml) pairs of a thin directory, sorted by subproject."""
    if not os.path.isdir(directory):
        if os.path.isfile(directory):
            diags.file_error(directory, "is a file, expected a directory (--thin-manifest-dir)")
        elif os.path.exists(directory):
            diags.file_error(directory, "is not a directory (--thin-manifest-dir)")
        else:
            diags.file_error(directory, "thin manifest directory not found")
        return []
    root_real = os.path.realpath(directory)
    manifests_dir = os.path.join(directory, "manifests")
    images_dir = os.path.join(directory, "images")
    pairs: list[tuple[str, str]] = []
    projects: set[str] = set()  # subprojects with a manifest, read or reported
    names = list_folder(manifests_dir, diags) if os.path.lexists(manifests_dir) else []
    if names is None:
        return []
    for name in names:
        sub = os.path.join(manifests_dir, name)
        if name == MANIFEST_FILE:
            diags.file_error(sub, f"must be in manifests/<subproject>/{MANIFEST_FILE}")
            continue
        is_folder = _subfolder(sub, diags)
        if is_folder is None:
            projects.add(name)
            continue
        if not is_folder:
            continue  # OWNERS, README.md and other files are not manifests
        if not _inside(root_real, sub):
            diags.file_error(sub, f"symlink leaves {directory}: refused")
            projects.add(name)
            continue
        if list_folder(sub, diags) is None:
            projects.add(name)
            continue
        _refuse_nested(sub, diags)
        manifest_path = os.path.join(sub, MANIFEST_FILE)
        state = file_state(manifest_path, diags)
        if state == "missing":
            diags.file_warning(sub, f"skipped: no {MANIFEST_FILE}")
            continue
        projects.add(name)
        if state == "refused":
            continue
        images_path = os.path.join(images_dir, name, IMAGES_FILE)
        state = file_state(images_path, diags)
        if state == "missing":
            diags.file_error(manifest_path, f"images file is missing: {images_path}")
        elif state == "ok":
            pairs.append((manifest_path, images_path))
    _unmatched_images(images_dir, projects, diags)
    if not projects:
        diags.file_error(directory, f"no manifests found (expected manifests/*/{MANIFEST_FILE})")
    return pairs


def _unmatched_images(images_dir: str, projects: set[str], diags: Diagnostics) -> None:
    """images/<p>/ folders no manifest promotes: a warning, or an error when unreadable."""
    if not os.path.isdir(images_dir):
        return
    for name in list_folder(images_dir, diags) or []:
        sub = os.path.join(images_dir, name)
        if name in projects or not os.path.isdir(sub):
            continue
        diags.file_warning(sub, f"no manifests/{name}/{MANIFEST_FILE}: images not promoted")


def _refuse_nested(sub: str, diags: Diagnostics) -> None:
    """A promoter-manifest.yaml below manifests/<p>/ is never read: say so. A folder that
    cannot be listed might hide one, so it is an error too."""

    def unreadable(exc: OSError) -> None:
        diags.file_error(str(exc.filename), f"cannot read folder: {exc.strerror}")

    for current, dirs, files in os.walk(sub, onerror=unreadable):
        dirs.sort()
        if current != sub and MANIFEST_FILE in files:
            diags.file_error(
                os.path.join(current, MANIFEST_FILE),
                f"nested manifest: only manifests/<subproject>/{MANIFEST_FILE} is read",
            )
