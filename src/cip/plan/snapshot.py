"""Snapshots: what a registry holds (or would hold) as image → digest → tags rows.

The YAML form is exactly an images.yaml, so a snapshot pastes into a thin manifest and promotes
as is; the CSV form (`name@digest,name:tag`) suits diffing and `wc -l`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from cip.model.manifest import PromoterManifest

Snapshot = dict[str, dict[str, set[str]]]  # image name -> digest -> tags


def manifest_based_snapshot(manifests: Sequence[PromoterManifest], registry: str) -> Snapshot:
    """What the manifests would put below `registry`, matched on whole path segments."""
    prefix = registry.rstrip("/")
    rows: Snapshot = {}
    for manifest in manifests:
        for spec in manifest.destinations:
            for image in manifest.images:
                full = f"{spec.name}/{image.name}"
                if not full.startswith(prefix + "/"):
                    continue
                name = full[len(prefix) + 1 :]
                digests = rows.setdefault(name, {})
                for digest, tags in image.dmap.items():
                    digests.setdefault(digest, set()).update(tags)
    return rows


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_yaml(snapshot: Snapshot) -> str:
    lines: list[str] = []
    for name in sorted(snapshot):
        lines.append(f"- name: {name}")
        digests = snapshot[name]
        if not digests:
            lines.append("  dmap: {}")
            continue
        lines.append("  dmap:")
        for digest in sorted(digests):
            tags = ", ".join(_quote(t) for t in sorted(digests[digest]))
            lines.append(f"    {_quote(digest)}: [{tags}]")
    return "\n".join(lines) + ("\n" if lines else "")


def render_csv(snapshot: Snapshot) -> str:
    lines: list[str] = []
    for name in sorted(snapshot):
        for digest in sorted(snapshot[name]):
            tags: Iterable[str] = sorted(snapshot[name][digest])
            if not snapshot[name][digest]:
                lines.append(f"{name}@{digest},-")
            lines.extend(f"{name}@{digest},{name}:{tag}" for tag in tags)
    return "\n".join(lines) + ("\n" if lines else "")
