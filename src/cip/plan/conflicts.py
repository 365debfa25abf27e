"""Overlapping edges: one destination `registry/image:tag` mapped to two digests.

Such a pair would make the promoted tag depend on which edge ran last, so it is a validation
error naming both places. Checking per destination repository (about 10,000 in the Kubernetes
corpus) instead of per edge (720,000) keeps this cheap; repositories are compared by their full
path, so `gcr.io/a` + image `b/c` and `gcr.io/a/b` + image `c` are seen as the same.
"""

from __future__ import annotations

from collections.abc import Sequence

from cip.errors import Diagnostic
from cip.model.manifest import ImageEntry, Position, PromoterManifest


def _full_path(registry_name: str, image: str) -> str:
    host, sep, rest = registry_name.partition("/")
    return f"{host.lower()}{sep}{rest}/{image}"


def find_overlaps(manifests: Sequence[PromoterManifest]) -> list[Diagnostic]:
    contributors: dict[str, list[tuple[int, ImageEntry]]] = {}
    added: set[tuple[str, int, str]] = set()
    for index, manifest in enumerate(manifests):
        for image in manifest.images:
            for spec in manifest.destinations:
                path = _full_path(spec.name, image.name)
                if (path, index, image.name) in added:
                    continue
                added.add((path, index, image.name))
                contributors.setdefault(path, []).append((index, image))
    reported: set[tuple[Position, Position, str]] = set()
    diagnostics: list[Diagnostic] = []
    checked_alone: set[int] = set()
    for path, entries in contributors.items():
        if len(entries) == 1:
            # One image entry alone can only conflict with itself; check it once, not per mirror.
            if id(entries[0][1]) in checked_alone:
                continue
            checked_alone.add(id(entries[0][1]))
        owner: dict[str, tuple[str, Position]] = {}
        for _, image in entries:
            for digest, tags in image.dmap.items():
                where = image.digest_positions[digest]
                for tag in tags:
                    first = owner.get(tag)
                    if first is None:
                        owner[tag] = (digest, where)
                        continue
                    if first[0] == digest:
                        continue
                    key = (first[1], where, tag)
                    if key in reported:
                        continue
                    reported.add(key)
                    repo = path if len(entries) > 1 else f"{image.name} (every destination)"
                    diagnostics.append(
                        Diagnostic(
                            f"tag {tag} of {repo} would point at two digests: {first[0]} "
                            f"(at {first[1]}) and {digest}",
                            file=where.file,
                            line=where.line,
                            column=where.column,
                            image=image.name,
                            digest=digest,
                        )
                    )
    return diagnostics
