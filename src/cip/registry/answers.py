"""Registry answers checked before use: manifest headers, listing pages, names, Google's map.

Headers and listings come from the registry, so every value is checked for the type the
Distribution spec (and Google's extension) gives it; a malformed answer is a `RegistryError`
naming the registry and repository, never a crash deep in the planner nor a wrong verdict
(a malformed digest would read as "the tag points elsewhere"), and a `Link` chain that loops
is refused instead of followed forever.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cip.errors import DigestMismatchError, RegistryError, shown
from cip.oci import media
from cip.registry.client import ListedManifest, ManifestInfo
from cip.transport.responses import next_link

if TYPE_CHECKING:
    from aiohttp import ClientResponse


class Pages:
    """The `Link` pages of one listing: a next page already read means the registry is going
    round in circles, refused rather than followed forever."""

    def __init__(self, what: str, ctx: media.ErrorContext) -> None:
        self.what = what
        self.ctx = ctx
        self._seen: set[str] = set()

    def next(self, response: ClientResponse) -> str | None:
        try:
            url = next_link(response)
        except ValueError as exc:  # yarl: a Link target that is no URL
            raise RegistryError(f"{self.what}: malformed Link header ({exc})", **self.ctx) from exc
        if url is not None:
            if url in self._seen or url == str(response.url):
                raise RegistryError(f"{self.what}: the Link header loops back to {url}", **self.ctx)
            self._seen.add(url)
        return url


def strings(body: dict[str, Any], key: str, ctx: media.ErrorContext) -> list[str]:
    """`body[key]` as a list of names; absent and null are empty (see `list_tags`)."""
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise RegistryError(f"the listing's {key!r} is not a list of strings", **ctx)
    return value


def google_manifests(google: object, ctx: media.ErrorContext) -> dict[str, ListedManifest]:
    """Google's `manifest` map of a tag listing, checked: digests as keys, tags as strings."""
    problem = "the listing's 'manifest' map is malformed (Google's tags/list extension)"
    if not isinstance(google, dict):
        raise RegistryError(problem, **ctx)
    listed: dict[str, ListedManifest] = {}
    for digest, info in google.items():
        if not media.is_digest(digest) or not isinstance(info, dict):
            raise RegistryError(f"{problem}: entry {shown(str(digest))}", **ctx)
        tags = info.get("tag") or []
        kind = info.get("mediaType")
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise RegistryError(f"{problem}: tags of {digest}", **ctx)
        listed[digest] = ListedManifest(
            digest=digest, tags=tuple(tags), media_type=kind if isinstance(kind, str) else None
        )
    return listed


def manifest_info(
    headers: Mapping[str, str], digest: str, reference: str, what: str, ctx: media.ErrorContext
) -> ManifestInfo:
    """A HEAD's answer about a manifest: `digest` (Docker-Content-Digest, or the reference
    asked for) must be a digest, the one asked for, and Content-Length a size."""
    if not media.is_digest(digest):
        raise RegistryError(f"{what}: Docker-Content-Digest {shown(digest)} is not a digest", **ctx)
    if ":" in reference and digest != reference:
        raise DigestMismatchError(f"{what}: the registry answered for {digest}", **ctx)
    length = headers.get("content-length", "0")
    if not (length.isascii() and length.isdigit()):
        raise RegistryError(f"{what}: Content-Length {shown(length)} is no size", **ctx)
    return ManifestInfo(
        digest=digest,
        media_type=headers.get("content-type", "").split(";")[0].strip(),
        size=int(length),
    )
