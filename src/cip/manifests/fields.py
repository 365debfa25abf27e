"""The schema of promoter manifests, checked node by node with positions.

Rules that upstream applies only to plain manifests are applied here to both kinds, and every
problem is collected instead of stopping at the first, so one run shows a pull request author
everything to fix.
"""

from __future__ import annotations

from typing import Final

import yaml

from cip.errors import quoted, shown
from cip.manifests.yamlnodes import (
    BOOL,
    NULL,
    Diagnostics,
    is_string,
    kind_of,
    mapping_items,
    position,
    scalar_text,
)
from cip.model.manifest import ImageEntry, Position, RegistrySpec
from cip.model.refs import (
    Registry,
    is_digest,
    is_repository_path,
    is_tag,
    registry_name_problem,
)

REGISTRY_FIELDS: Final = ("name", "src", "service-account")
IMAGE_FIELDS: Final = ("name", "dmap")


def parse_registries(
    path: str, node: yaml.Node, diags: Diagnostics, manifest_pos: Position
) -> list[RegistrySpec]:
    """The `registries:` list; exactly one source, names well-formed and not repeated."""
    if not isinstance(node, yaml.SequenceNode):
        diags.error(position(path, node), f"registries must be a list, not {kind_of(node)}")
        return []
    specs: list[RegistrySpec] = []
    seen: dict[str, Position] = {}
    source_entries = 0
    for item in node.value:
        spec, is_source = _parse_registry(path, item, diags)
        source_entries += is_source
        if spec is None or spec.position is None:
            continue
        first = seen.get(spec.name)
        if first is not None:
            diags.error(
                spec.position,
                f"registry {spec.name} is listed twice (first at line {first.line})",
                registry=spec.name,
            )
            continue
        seen[spec.name] = spec.position
        specs.append(spec)
    sources = [s for s in specs if s.src]
    if not node.value:
        diags.error(position(path, node), "registries must list at least the source registry")
    elif not source_entries:
        diags.error(position(path, node), "source registry must be set (one entry with src: true)")
    elif len(sources) > 1 or source_entries > 1:
        names = ", ".join(s.name for s in sources)
        diags.error(position(path, node), f"cannot have more than 1 source registry: {names}")
    elif len(node.value) == 1:  # not when a destination was invalid: one error is enough
        diags.warning(manifest_pos, "no destination registries: nothing will be promoted")
    return specs


def _parse_registry(
    path: str, node: yaml.Node, diags: Diagnostics
) -> tuple[RegistrySpec | None, bool]:
    """The spec (None when invalid) and whether the entry claims to be the source."""
    where = position(path, node)
    if not isinstance(node, yaml.MappingNode):
        diags.error(where, f"a registry must be a mapping with a name, not {kind_of(node)}")
        return None, False
    name: str | None = None
    src = False
    account: str | None = None
    ok = True
    for key, key_node, value in mapping_items(path, node, diags, "a registry"):
        if key == "name":
            if not is_string(value):
                diags.error(
                    position(path, value),
                    f"registry name must be a string: {shown(str(value.value))}",
                )
                ok = False
            else:
                name = str(value.value)
        elif key == "src":
            if value.tag != BOOL:
                diags.error(
                    position(path, value),
                    f"src must be true or false, not {shown(str(value.value))}",
                )
                ok = False
            else:
                src = str(value.value).lower() in ("true", "yes", "on", "y")
        elif key == "service-account":
            if value.tag == NULL:
                continue
            if not is_string(value):
                diags.error(position(path, value), "service-account must be a string")
                ok = False
            else:
                account = str(value.value)
        else:
            allowed = ", ".join(REGISTRY_FIELDS)
            diags.error(
                position(path, key_node),
                f"unknown field {quoted(key)} in a registry (allowed: {allowed})",
            )
            ok = False
    if name is None:
        if ok:
            diags.error(where, "registry has no name")
        return None, src
    problem = registry_name_problem(name)
    if problem is not None:
        diags.error(where, problem, registry=name or None)
        return None, src
    if not ok:
        return None, src
    registry = Registry.parse(name, relative_to=path)
    spec = RegistrySpec.model_construct(
        registry=registry, src=src, service_account=account, position=where
    )
    return spec, src


class ImageCollector:
    """Merges image entries of one file by name (real manifests repeat names: kops, etcdadm)."""

    def __init__(self) -> None:
        self.dmaps: dict[str, dict[str, list[str]]] = {}
        self.positions: dict[str, Position] = {}
        self.digest_positions: dict[str, dict[str, Position]] = {}
        self.entries_written = 0
        self.tag_entries = 0
        self.entry_lines: list[int] = []

    def entries(self) -> tuple[ImageEntry, ...]:
        return tuple(
            ImageEntry.model_construct(
                name=name,
                dmap={d: tuple(sorted(tags)) for d, tags in dmap.items()},
                position=self.positions[name],
                digest_positions=self.digest_positions[name],
            )
            for name, dmap in self.dmaps.items()
        )

    def add_list(self, path: str, node: yaml.Node, diags: Diagnostics) -> None:
        if not isinstance(node, yaml.SequenceNode):
            diags.error(position(path, node), f"images must be a list, not {kind_of(node)}")
            return
        for item in node.value:
            self._add_entry(path, item, diags)

    def _add_entry(self, path: str, node: yaml.Node, diags: Diagnostics) -> None:
        where = position(path, node)
        if not isinstance(node, yaml.MappingNode):
            diags.error(
                where, f"an image must be a mapping with name and dmap, not {kind_of(node)}"
            )
            return
        self.entries_written += 1
        self.entry_lines.append(where.line)
        name: str | None = None
        dmap_node: yaml.Node | None = None
        has_dmap = False
        for key, key_node, value in mapping_items(path, node, diags, "an image"):
            if key == "name":
                if not is_string(value):
                    diags.error(
                        position(path, value),
                        f"image name must be a string: {shown(str(value.value))}",
                    )
                elif not is_repository_path(str(value.value)):
                    diags.error(
                        position(path, value),
                        f"invalid image name: {shown(str(value.value))} (lowercase path components "
                        "[a-z0-9] joined by '.', '_', '__', '-' or '/')",
                    )
                else:
                    name = str(value.value)
            elif key == "dmap":
                has_dmap = True
                dmap_node = value
            else:
                allowed = ", ".join(IMAGE_FIELDS)
                diags.error(
                    position(path, key_node),
                    f"unknown field {quoted(key)} in an image (allowed: {allowed})",
                )
        if name is None:
            if not any(key == "name" for key, _, _ in _keys(node)):
                diags.error(where, "image has no name")
            return
        if name not in self.dmaps:
            self.dmaps[name] = {}
            self.positions[name] = where
            self.digest_positions[name] = {}
        if not has_dmap:
            diags.error(where, f"image {name} has no dmap", image=name)
        elif dmap_node is None or dmap_node.tag == NULL:
            diags.warning(where, f"image {name} has a null dmap: no digests to promote", image=name)
        elif not isinstance(dmap_node, yaml.MappingNode):
            diags.error(
                position(path, dmap_node),
                f"dmap of {name} must map digests to tag lists, not {kind_of(dmap_node)}",
                image=name,
            )
        else:
            self._add_dmap(path, name, dmap_node, diags)

    def _add_dmap(self, path: str, name: str, node: yaml.MappingNode, diags: Diagnostics) -> None:
        dmap = self.dmaps[name]
        positions = self.digest_positions[name]
        for digest, key_node, value in mapping_items(path, node, diags, f"the dmap of {name}"):
            where = position(path, key_node)
            if not is_digest(digest):
                diags.error(where, f"invalid digest: {shown(digest)}", image=name)
                continue
            tags = _tags(path, name, digest, value, diags)
            self.tag_entries += len(tags)
            known = dmap.get(digest)
            if known is None:
                dmap[digest] = tags
                positions[digest] = where
                continue
            for tag in tags:
                if tag in known:
                    diags.warning(where, f"tag {tag} is listed twice for {digest}", image=name)
                else:
                    known.append(tag)


def _keys(node: yaml.MappingNode) -> list[tuple[str, yaml.Node, yaml.Node]]:
    return [(str(k.value), k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)]


def _tags(path: str, image: str, digest: str, node: yaml.Node, diags: Diagnostics) -> list[str]:
    if node.tag == NULL:
        return []
    if not isinstance(node, yaml.SequenceNode):
        diags.error(
            position(path, node),
            f"tags of {digest} must be a list, not {kind_of(node)}",
            image=image,
        )
        return []
    tags: list[str] = []
    for item in node.value:
        if not is_string(item):
            text = shown(scalar_text(item))
            if isinstance(item, yaml.ScalarNode):
                message = (
                    f"invalid tag: {text} is {kind_of(item)} in YAML, not a string; "
                    f'quote it: "{text}"'
                )
            else:
                message = f"invalid tag: expected a string, found {kind_of(item)}"
            diags.error(position(path, item), message, image=image, digest=digest)
            continue
        tag = str(item.value)
        if not is_tag(tag):
            diags.error(
                position(path, item), f"invalid tag: {shown(tag)}", image=image, digest=digest
            )
            continue
        tags.append(tag)
    return tags
