"""SBOMs staging attaches to an image travel with it, to every destination it is written to.

When a digest is copied (or a tag added to it) at a destination, the `sha256-<hex>.sbom` staging
holds for it and for each child of an index is merged into that destination, byte for byte (its
layers keep their digests; the tag's manifest is rebuilt as the merge rule of
`trust/attached.py` says), before the image's tags are written: a run that dies before then
leaves the tag unwritten, and the next run, finding the tag to add, carries the SBOM again.
One tag listing per source repository says what there is.

Signatures, attestations and referrers travel otherwise: cip writes `.sig`, `.att` and the
referrers index itself, and the plan trusts their presence to mean cip's own content is there.
So staging's are merged by the sign and attest steps, into the primary in the same PUT as (or
before) cip's own, and replicated with it (`trust/signing.py`'s `carry`); a run without a
signer carries SBOMs only, and a later run with one brings the rest.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from cip.errors import RegistryError
from cip.model.refs import Registry as RegistryName
from cip.plan.edges import EdgeGroup
from cip.promote.copy import ImageCopier
from cip.registry.client import Manifest, Registry
from cip.registry.pool import RegistryPool
from cip.trust.attached import attached_tag
from cip.trust.store import AttachedWriter, BlobOrigin, Incoming, read_attached


@dataclass
class AttachedTravel:
    pool: RegistryPool
    copier: ImageCopier
    writer: AttachedWriter = field(default_factory=AttachedWriter)
    merged: int = 0  # `.sbom` tags merged into destinations
    _listings: dict[tuple[str, str], asyncio.Task[frozenset[str]]] = field(default_factory=dict)

    async def _listed(self, source: RegistryName, image: str) -> frozenset[str]:
        key = (source.name, image)
        if key not in self._listings:
            client, repository = self.pool.locate(source, image)
            self._listings[key] = asyncio.ensure_future(_list(client, repository))
        return await asyncio.shield(self._listings[key])

    async def carry(
        self, group: EdgeGroup, dst: Registry, dst_repo: str, manifest: Manifest
    ) -> None:
        """Merge staging's `.sbom` of the digest (and of its children) into `dst_repo`."""
        listed = await self._listed(group.source, group.image)
        parsed = manifest.parse()
        digests = [group.digest, *(c.digest for c in parsed.children if parsed.is_index)]
        wanted = [attached_tag(d, "sbom") for d in digests if attached_tag(d, "sbom") in listed]
        if not wanted:
            return
        src, src_repo = self.pool.locate(group.source, group.image)
        for tag in wanted:
            theirs = await read_attached(src, src_repo, tag)
            if theirs is None:
                continue  # deleted since the listing
            layers = theirs.parse().layers
            # Blobs first, streamed (an SBOM may be large); the merge rebuilds the manifest.
            await self.copier.copy_blobs(src, src_repo, dst, dst_repo, layers)
            origin = BlobOrigin(src, src_repo)
            result = await self.writer.merge(
                dst, dst_repo, tag, [Incoming(layer, origin) for layer in layers]
            )
            self.merged += result.written


async def _list(client: Registry, repository: str) -> frozenset[str]:
    try:
        return frozenset((await client.list_tags(repository)).tags)
    except RegistryError as error:
        if error.status == 404:
            return frozenset()  # Distribution 2.8.2: NAME_UNKNOWN until the first tag
        raise
