"""Plain files and thin directories in, promoter manifests and all their problems out.

Thin directories are walked by `cip.manifests.thin`. Everything is read before anything is
judged so that a pull request author sees every problem of every file in one run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import yaml

from cip.errors import Diagnostic, quoted
from cip.manifests.fields import ImageCollector, parse_registries
from cip.manifests.thin import MANIFEST_FILE, discover_thin, link_note, not_regular
from cip.manifests.yamlnodes import Diagnostics, compose, kind_of, mapping_items, position
from cip.model.manifest import Position, PromoterManifest, RegistrySpec

PLAIN_FIELDS = ("registries", "images")
THIN_FIELDS = ("registries", "imagesPath")

# Reads a manifest's text, or reports why it cannot and returns None. The loader reads the
# working tree by default; `cip.manifests.tree` passes one that reads a git commit's tree.
TextReader = Callable[[str, Diagnostics], "str | None"]


@dataclass
class LoadResult:
    manifests: list[PromoterManifest] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]


def load_all(plain_files: list[str], thin_dirs: list[str]) -> LoadResult:
    """Every manifest named by `--manifest` and `--thin-manifest-dir`, in the order given."""
    diags = Diagnostics()
    manifests: list[PromoterManifest] = []
    # Keyed by the files' real paths: two subprojects may share one promoter-manifest.yaml
    # through a symlink and still differ in their images.
    seen: set[tuple[str, str]] = set()
    for path in plain_files:
        real = os.path.realpath(path)
        if (real, real) in seen:
            diags.file_warning(path, "manifest given twice; read once")
            continue
        seen.add((real, real))
        manifest = load_plain(path, diags)
        if manifest is not None:
            manifests.append(manifest)
    for directory in thin_dirs:
        for manifest_path, images_path in discover_thin(directory, diags):
            key = (os.path.realpath(manifest_path), os.path.realpath(images_path))
            if key in seen:
                diags.file_warning(manifest_path, "manifest given twice; read once")
                continue
            seen.add(key)
            manifest = load_thin(manifest_path, images_path, diags)
            if manifest is not None:
                manifests.append(manifest)
    if not plain_files and not thin_dirs:
        diags.items.append(Diagnostic("no manifests given: use --manifest or --thin-manifest-dir"))
    return LoadResult(manifests, diags.items)


def _read(path: str, diags: Diagnostics) -> str | None:
    try:
        # O_NONBLOCK: opening a FIFO waits for a writer, and reading a device never ends; the
        # file is checked to be regular before a byte is read, on the descriptor itself.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            kind = not_regular(os.fstat(descriptor).st_mode)
        except BaseException:
            os.close(descriptor)
            raise
        if kind is not None:
            os.close(descriptor)
            diags.file_error(path, f"{link_note(path)}is {kind}, expected a YAML file")
            return None
        with open(descriptor, encoding="utf-8") as stream:
            return stream.read()
    except FileNotFoundError:
        missing = "target not found" if os.path.islink(path) else "file not found"
        diags.file_error(path, link_note(path) + missing)
    except UnicodeDecodeError as exc:
        diags.file_error(path, f"not UTF-8 text: {exc.reason} at byte {exc.start}")
    except OSError as exc:
        diags.file_error(path, f"{link_note(path)}cannot read: {exc.strerror}")
    return None


def _root_mapping(
    path: str, diags: Diagnostics, read: TextReader | None = None
) -> yaml.MappingNode | None:
    text = (read or _read)(path, diags)
    if text is None:
        return None
    before = len(diags.items)
    root = compose(path, text, diags)
    if root is None:
        if len(diags.items) == before:
            diags.file_error(path, "manifest is empty")
        return None
    if not isinstance(root, yaml.MappingNode):
        diags.error(position(path, root), f"a manifest must be a mapping, not {kind_of(root)}")
        return None
    return root


def load_plain(
    path: str, diags: Diagnostics, read: TextReader | None = None
) -> PromoterManifest | None:
    root = _root_mapping(path, diags, read)
    if root is None:
        return None
    here = position(path, root)
    images = ImageCollector()
    registries: list[RegistrySpec] = []
    found: set[str] = set()
    for key, key_node, value in mapping_items(path, root, diags, "a manifest"):
        found.add(key)
        if key == "registries":
            registries = parse_registries(path, value, diags, here)
        elif key == "images":
            images.add_list(path, value, diags)
        elif key == "imagesPath":
            diags.error(
                position(path, key_node),
                "imagesPath belongs to thin manifests (--thin-manifest-dir); "
                "a plain manifest lists its images under images:",
            )
        else:
            _unknown(path, key_node, key, PLAIN_FIELDS, diags)
    if "registries" not in found:
        diags.error(here, "manifest has no registries")
    if "images" not in found:
        diags.error(here, "manifest has no images")
    return _build(path, path, registries, images)


def load_thin(
    manifest_path: str, images_path: str, diags: Diagnostics, read: TextReader | None = None
) -> PromoterManifest | None:
    root = _root_mapping(manifest_path, diags, read)
    if root is None:
        return None
    here = position(manifest_path, root)
    registries: list[RegistrySpec] = []
    found: set[str] = set()
    for key, key_node, value in mapping_items(manifest_path, root, diags, "a promoter manifest"):
        found.add(key)
        if key == "registries":
            registries = parse_registries(manifest_path, value, diags, here)
        elif key == "imagesPath":
            _check_images_path(manifest_path, images_path, value, diags)
        elif key == "images":
            diags.error(
                position(manifest_path, key_node),
                f"a thin manifest keeps its images in {images_path}, not in {MANIFEST_FILE}",
            )
        else:
            _unknown(manifest_path, key_node, key, THIN_FIELDS, diags)
    if "registries" not in found:
        diags.error(here, "manifest has no registries")
    images = ImageCollector()
    text = (read or _read)(images_path, diags)
    if text is not None:
        before = len(diags.items)
        node = compose(images_path, text, diags)
        if node is not None:
            images.add_list(images_path, node, diags)
        elif len(diags.items) == before:  # empty or comment-only, not a syntax error
            diags.file_warning(images_path, "no images (the file is empty or only comments)")
    return _build(manifest_path, images_path, registries, images)


def _build(
    manifest_path: str, images_path: str, registries: list[RegistrySpec], images: ImageCollector
) -> PromoterManifest | None:
    if sum(1 for r in registries if r.src) != 1:
        return None
    return PromoterManifest.model_construct(
        manifest_file=manifest_path,
        images_file=images_path,
        registries=tuple(registries),
        images=images.entries(),
        entries_written=images.entries_written,
        tag_entries=images.tag_entries,
        entry_lines=tuple(images.entry_lines),
    )


def _unknown(
    path: str, key_node: yaml.Node, key: str, allowed: tuple[str, ...], diags: Diagnostics
) -> None:
    diags.error(
        position(path, key_node),
        f"unknown field {quoted(key)} in a manifest (allowed: {', '.join(allowed)})",
    )


def _check_images_path(
    manifest_path: str, images_path: str, node: yaml.Node, diags: Diagnostics
) -> None:
    """`imagesPath` is deprecated: tolerated only where it names the default location."""
    where: Position = position(manifest_path, node)
    if not isinstance(node, yaml.ScalarNode) or node.tag != "tag:yaml.org,2002:str":
        diags.error(where, f"imagesPath must be a string, not {kind_of(node)}")
        return
    named = os.path.normpath(os.path.join(os.path.dirname(manifest_path), str(node.value)))
    if named == os.path.normpath(images_path):
        diags.warning(where, "imagesPath is deprecated and names the default location: remove it")
    else:
        diags.error(
            where,
            f"imagesPath is deprecated and only the default location is supported: "
            f"move {node.value} to {images_path}",
        )
