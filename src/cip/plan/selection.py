"""Narrowing a run to what changed, or to named images; pure, so it is tested with values.

A digest is selected when a changed line falls in its span: from its dmap key to the line
before the next digest key or image entry of the same file (so a tag added in a block-style
list counts, and a new image entry below it does not). A
changed line of a manifest outside every digest span (its registries, say a new mirror) selects
every image of that manifest. An empty change selects nothing: nothing to do, not everything.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Collection, Mapping, Sequence

from cip.model.manifest import PromoterManifest
from cip.plan.edges import EdgeGroup


def _spans(manifest: PromoterManifest) -> list[tuple[int, str, str]]:
    """(first line, image, digest) of every digest span; ("", "") spans own no digest."""
    starts = [
        (position.line, image.name, digest)
        for image in manifest.images
        for digest, position in image.digest_positions.items()
    ]
    starts.extend((line, "", "") for line in manifest.entry_lines)
    return sorted(starts)


def select_changed(
    manifests: Sequence[PromoterManifest],
    groups: Sequence[EdgeGroup],
    changed: Mapping[str, set[int]],
) -> list[EdgeGroup]:
    whole: set[int] = set()
    chosen: set[tuple[int, str, str]] = set()
    for index, manifest in enumerate(manifests):
        manifest_file = os.path.realpath(manifest.manifest_file)
        images_file = os.path.realpath(manifest.images_file)
        if manifest_file != images_file and changed.get(manifest_file):
            whole.add(index)  # a thin promoter-manifest.yaml: its registries changed
            continue
        lines = changed.get(images_file)
        if not lines:
            continue
        spans = _spans(manifest)
        starts = [line for line, _, _ in spans]
        for line in lines:
            at = bisect.bisect_right(starts, line) - 1
            if at < 0:
                if manifest_file == images_file:
                    whole.add(index)  # a plain manifest's header or registries
                continue
            _, image, digest = spans[at]
            if digest:
                chosen.add((index, image, digest))
    return [
        g
        for g in groups
        if g.manifest_index in whole or (g.manifest_index, g.image, g.digest) in chosen
    ]


def select_images(groups: Sequence[EdgeGroup], images: Collection[str]) -> list[EdgeGroup]:
    wanted = set(images)
    return [g for g in groups if g.image in wanted]
