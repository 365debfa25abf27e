"""Promoter manifests as validated values.

The loader (`cip.manifests.load`) validates everything with line numbers and then builds these
with `model_construct`, so the corpus' 20,000 digests are not validated twice. Source positions
are kept because every later verdict (overlap, lost image, tag move) should point a reviewer at
the line of the pull request that caused it.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict

from cip.model.refs import Registry


class Position(NamedTuple):
    file: str
    line: int  # 1-based
    column: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class RegistrySpec(BaseModel):
    """One entry of `registries:`; `service-account` is kept for the credentials layer."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    registry: Registry
    src: bool = False
    service_account: str | None = None
    position: Position | None = None

    @property
    def name(self) -> str:
        return self.registry.name


class ImageEntry(BaseModel):
    """An image name with its digests and tags, merged over repeated entries of one file.

    `dmap` maps digest to sorted tags (an empty tuple promotes the digest without a tag);
    `digest_positions` remembers where each digest was first written.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    dmap: dict[str, tuple[str, ...]]
    position: Position
    digest_positions: dict[str, Position]


class PromoterManifest(BaseModel):
    """One plain manifest, or one thin pair (promoter-manifest.yaml + images.yaml)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    manifest_file: str
    images_file: str
    registries: tuple[RegistrySpec, ...]
    images: tuple[ImageEntry, ...]
    entries_written: int  # image entries before repeated names were merged
    tag_entries: int  # (image, digest, tag) triples as written
    entry_lines: tuple[int, ...] = ()  # where each image entry of the images file starts

    @property
    def subproject(self) -> str:
        """What reports qualify an ambiguous image name with: a thin manifest's `<p>` (the
        folder of manifests/<p>/ and images/<p>/), or a plain manifest's file name stem."""
        if self.images_file != self.manifest_file:
            return os.path.basename(os.path.dirname(self.images_file))
        stem, _ = os.path.splitext(os.path.basename(self.manifest_file))
        return stem

    @property
    def source(self) -> RegistrySpec:
        return next(r for r in self.registries if r.src)

    @property
    def destinations(self) -> tuple[RegistrySpec, ...]:
        return tuple(r for r in self.registries if not r.src)
