"""Strict YAML reading with line numbers, on libyaml's C composer.

`yaml.compose` with the C loader builds the node tree (with marks) in C; walking the nodes
ourselves then costs about what PyYAML's own Python constructor would, so line numbers come
nearly free. The walk is also where strictness lives: duplicate keys, wrong node kinds and
values that YAML resolved to something other than a string (an unquoted `1.10` is a float) are
reported as diagnostics rather than silently coerced.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import yaml

from cip.errors import Diagnostic, quoted, shown
from cip.model.manifest import Position

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

STR: Final = "tag:yaml.org,2002:str"
BOOL: Final = "tag:yaml.org,2002:bool"
NULL: Final = "tag:yaml.org,2002:null"
_KIND_NAMES: Final = {
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:int": "a number",
    BOOL: "a boolean",
    NULL: "null",
    "tag:yaml.org,2002:timestamp": "a date",
}


class Diagnostics:
    """Collects every problem of a load, so all of them are reported at once."""

    def __init__(self) -> None:
        self.items: list[Diagnostic] = []

    def error(self, where: Position, message: str, **context: str | None) -> None:
        self.items.append(_diag("error", where, message, context))

    def warning(self, where: Position, message: str, **context: str | None) -> None:
        self.items.append(_diag("warning", where, message, context))

    def file_error(self, path: str, message: str) -> None:
        self.items.append(Diagnostic(message, "error", file=path))

    def file_warning(self, path: str, message: str) -> None:
        self.items.append(Diagnostic(message, "warning", file=path))

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "warning"]


def _diag(
    severity: str, where: Position, message: str, context: dict[str, str | None]
) -> Diagnostic:
    return Diagnostic(
        message,
        "error" if severity == "error" else "warning",
        file=where.file,
        line=where.line,
        column=where.column,
        image=context.get("image"),
        digest=context.get("digest"),
        registry=context.get("registry"),
    )


def position(path: str, node: yaml.Node) -> Position:
    mark = node.start_mark
    return Position(path, mark.line + 1, mark.column + 1)


def compose(path: str, text: str, diags: Diagnostics) -> yaml.Node | None:
    """The document's root node; None for an empty or comment-only file or a syntax error."""
    try:
        return yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if mark is None:
            diags.file_error(path, f"invalid YAML: {problem}")
        else:
            where = Position(path, mark.line + 1, mark.column + 1)
            diags.error(where, f"invalid YAML: {problem}")
    except yaml.YAMLError as exc:
        diags.file_error(path, f"invalid YAML: {exc}")
    return None


def kind_of(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node.tag == STR:
        return "a string"
    return _KIND_NAMES.get(node.tag, f"a value of type {node.tag}")


def scalar_text(node: yaml.Node) -> str:
    """The scalar as written, for messages; a short description for collections."""
    if isinstance(node, yaml.ScalarNode):
        return str(node.value)
    return kind_of(node)


def is_string(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == STR


def mapping_items(
    path: str, node: yaml.MappingNode, diags: Diagnostics, what: str
) -> Iterator[tuple[str, yaml.Node, yaml.Node]]:
    """Yields (key, key node, value node), reporting duplicate and non-string keys."""
    seen: dict[str, Position] = {}
    for key_node, value_node in node.value:
        if not is_string(key_node):
            if key_node.tag == "tag:yaml.org,2002:merge":
                diags.error(position(path, key_node), f"merge keys (<<) are not allowed in {what}")
            else:
                text = shown(scalar_text(key_node))
                diags.error(
                    position(path, key_node),
                    f"key {text} in {what} is {kind_of(key_node)}, expected a string",
                )
            continue
        key = str(key_node.value)
        where = position(path, key_node)
        first = seen.get(key)
        if first is not None:
            diags.error(
                where, f"duplicate key {quoted(key)} in {what} (first at line {first.line})"
            )
            continue
        seen[key] = where
        yield key, key_node, value_node
