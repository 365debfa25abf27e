"""`removal`: a digest or tag the base promotes does not silently disappear from the manifests.

Promoted images are never unpromoted: cip never deletes, so a removed line only stops future
promotions and hides from reviewers what production still serves. Removal is judged per
destination repository, so moving an image between subprojects (same repositories) is not a
removal, and dropping one mirror is. A warning by default; an error with `--forbid-removal`.
"""

from __future__ import annotations

from cip.checks.change import repository_key
from cip.checks.context import CheckContext
from cip.checks.findings import Check, Finding
from cip.model.manifest import ImageEntry, Position, PromoterManifest
from cip.model.refs import short_digest

ID = "removal"


def _head_index(
    manifests: list[PromoterManifest], repositories: set[str]
) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Digests and tags the head promotes to each repository in `repositories`."""
    digests: dict[str, set[str]] = {}
    tags: dict[str, set[str]] = {}
    for manifest in manifests:
        for spec in manifest.destinations:
            for image in manifest.images:
                key = repository_key(spec.name, image.name)
                if key in repositories:
                    digests.setdefault(key, set()).update(image.dmap)
                    for listed in image.dmap.values():
                        tags.setdefault(key, set()).update(listed)
    return digests, tags


def _where(base: list[str], gone: list[str]) -> str:
    if gone == base:
        return "removed from the manifests"
    return f"no longer promoted to {', '.join(gone)}"


async def run(context: CheckContext) -> list[Finding]:
    change = context.change
    severity = "error" if context.options.forbid_removal else "warning"
    repositories = {
        repository_key(spec.name, image.name)
        for manifest in change.base_manifests
        for spec in manifest.destinations
        for image in manifest.images
    }
    head_digests, head_tags = _head_index(change.loaded.manifests, repositories)
    entries = {
        (m.images_file, image.name): image.position
        for m in change.loaded.manifests
        for image in m.images
    }
    findings: list[Finding] = []
    for manifest in change.base_manifests:
        names = [spec.name for spec in manifest.destinations]
        for image in manifest.images:
            keys = {name: repository_key(name, image.name) for name in names}
            here = entries.get((manifest.images_file, image.name))
            for digest, tags in image.dmap.items():
                gone = [n for n in names if digest not in head_digests.get(keys[n], ())]
                if gone:
                    listed = f" (tags {', '.join(tags)})" if tags else ""
                    message = (
                        f"{image.name} {digest}{listed} was {_where(names, gone)} "
                        f"(line {image.digest_positions[digest].line} at the base): promoted "
                        "images are never unpromoted silently"
                    )
                    findings.append(_finding(severity, message, here, manifest, image, digest))
                    continue
                for tag in tags:
                    gone = [n for n in names if tag not in head_tags.get(keys[n], ())]
                    if gone:
                        message = (
                            f"tag {tag} of {image.name} ({short_digest(digest)}) was "
                            f"{_where(names, gone)}: promoted tags are never unpromoted silently"
                        )
                        findings.append(_finding(severity, message, here, manifest, image, digest))
    return findings


def _finding(
    severity: str,
    message: str,
    here: Position | None,
    manifest: PromoterManifest,
    image: ImageEntry,
    digest: str,
) -> Finding:
    """At the image's entry in the head, or at its file when the whole image is gone."""
    return Finding.at(
        ID,
        "error" if severity == "error" else "warning",
        message,
        here,
        image=image.name,
        digest=digest,
        file=manifest.images_file,
    )


CHECK = Check(ID, "no promoted digest or tag disappears (warning; --forbid-removal: error)", run)
