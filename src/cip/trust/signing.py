"""Signing a promoted digest once, on its primary registry, and replicating the signature.

`sign` writes `sha256-<hex>.sig` beside `repo@digest` on the primary: signatures staging holds
for the digest (merged first, as upstream copies them), then cip's own unless the tag already
carries a signature of the same payload by the same key. `replicate` merges the primary's
`.sig` into a mirror. An index is handled children first, then the index itself, the same order
as a copy: so an index's `.sig` on a registry means its children are signed there too, and a
plan that sees the index's tag need not look at the children. With the bundle format
(`formats`), the same steps write and replicate cosign v3's bundle referrer (`bundles.py`)
beside, or instead of, the `.sig`.

Work is shared within a run: two edges needing the same signature or replication await one
task, and finished tasks are dropped with `forget` so memory does not grow with the run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, cast

from cip.errors import RegistryError
from cip.oci.media import Descriptor
from cip.registry.client import Manifest, Registry
from cip.trust.attached import attached_tag, signature_tag
from cip.trust.bundles import (
    bundles_of,
    copy_referrers,
    merge_referrers_index,
    referrer,
    statement,
    write_referrer,
)
from cip.trust.signer import KnownPayloads, SignedLayer, Signer, Verifier, sign_layer
from cip.trust.simplesigning import payload
from cip.trust.store import AttachedWriter, BlobOrigin, Incoming, MergeResult, read_attached

T = TypeVar("T")
LEGACY_ONLY = frozenset({"legacy"})


class BundleSigner(Protocol):
    """A signer that also writes cosign v3 bundles (the keyless signer)."""

    def sign_statement(self, statement: bytes) -> bytes: ...

    def owns_bundle(self, data: bytes, digest: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class Place:
    """A repository on a registry."""

    registry: Registry
    repository: str

    def origin(self) -> BlobOrigin:
        return BlobOrigin(self.registry, self.repository)


@dataclass
class SigningStats:
    signed: int = 0  # signatures cip made
    replicated: int = 0  # `.sig` tags merged into a mirror
    already: int = 0  # tags that already held what was asked


@dataclass
class SignatureService:
    """Signs and replicates `.sig` tags for one run."""

    signer: Signer | None
    annotations: Mapping[str, str] = field(default_factory=dict)
    copy_attached: bool = True
    verifiers: Sequence[Verifier] = ()
    formats: frozenset[str] = LEGACY_ONLY  # "legacy" (`.sig`) and/or "bundle" (a referrer)
    writer: AttachedWriter = field(default_factory=AttachedWriter)
    stats: SigningStats = field(default_factory=SigningStats)
    _tasks: dict[tuple[object, ...], asyncio.Task[object]] = field(default_factory=dict)
    _held: dict[tuple[int, str, str], list[Descriptor]] = field(default_factory=dict)
    _known: KnownPayloads = field(init=False)

    def __post_init__(self) -> None:
        own = [self.signer.verifier()] if self.signer is not None else []
        self._known = KnownPayloads([*own, *self.verifiers])

    async def _once(self, key: tuple[object, ...], work: Callable[[], Awaitable[T]]) -> T:
        task = self._tasks.get(key)
        if task is None:
            task = self._tasks[key] = asyncio.ensure_future(work())
        return cast(T, await asyncio.shield(task))

    def forget(self) -> None:
        """Drop finished work (manifests read, merges done) between batches."""
        self._tasks = {k: t for k, t in self._tasks.items() if not t.done()}

    async def _manifest(self, place: Place, digest: str) -> Manifest:
        return await self._once(
            ("manifest", id(place.registry), place.repository, digest),
            lambda: place.registry.get_manifest(place.repository, digest),
        )

    async def _children(self, place: Place, digest: str) -> tuple[Descriptor, ...]:
        parsed = (await self._manifest(place, digest)).parse()
        return parsed.children if parsed.is_index else ()

    def payload_for(self, reference: str, digest: str) -> bytes:
        data = payload(reference, digest, self.annotations)
        self._known.add(data)
        return data

    async def sign(
        self,
        place: Place,
        digest: str,
        reference: str,
        staging: Place | None = None,
        *,
        hold_index: bool = False,
    ) -> None:
        """Make `place@digest` (and every child) carry cip's signature for `reference`.

        `hold_index`: a bundle referrer of `digest` itself is written, but its entry in the
        referrers index is held for `held_entries`, so the attest step puts it in the same PUT
        as the attestation's. The referrers tag is how the plan sees both, so neither may show
        there without the other.
        """
        await self._once(
            ("sign", id(place.registry), place.repository, digest),
            lambda: self._sign(place, digest, reference, staging, hold_index),
        )

    def held_entries(self, place: Place, digest: str) -> list[Descriptor]:
        """The referrers index entries `sign(..., hold_index=True)` held back (taken once)."""
        return self._held.pop((id(place.registry), place.repository, digest), [])

    async def carry(self, staging: Place, place: Place, digest: str) -> None:
        """What staging attaches to `digest` that the signature's own merge does not take:
        its referrers (with bundles, held for the PUT of cip's own index entry, else merged
        now, before cip's `.sig`), and, when no `.sig` of cip's is written, its `.sig` layers.
        Either way the tag the plan reads is written only with cip's signature in or after it.
        """
        held = None
        if "bundle" in self.formats:
            held = self._held.setdefault((id(place.registry), place.repository, digest), [])
        await copy_referrers(
            self.writer, staging.registry, staging.repository, place.registry, place.repository,
            digest, required=False, hold=held, by_subject=True,
        )  # fmt: skip
        if "legacy" not in self.formats:
            await self.replicate_tag(staging, place, digest, "sig", required=False)

    async def _sign(
        self,
        place: Place,
        digest: str,
        reference: str,
        staging: Place | None,
        hold_index: bool = False,
    ) -> None:
        if self.signer is None:
            raise RegistryError(
                "no signer configured (--signing-key)",
                registry=place.registry.name,
                image=place.repository,
                digest=digest,
            )
        signer = self.signer
        children = await self._children(place, digest)
        await asyncio.gather(*(self.sign(place, c.digest, reference, staging) for c in children))
        if staging is not None and self.copy_attached:
            await self.carry(staging, place, digest)
        written = False
        if "bundle" in self.formats:
            written = await self._sign_bundle(place, digest, reference, hold_index)
        if "legacy" in self.formats:
            written = await self._sign_legacy(signer, place, digest, reference, staging) or written
        if not written:
            self.stats.already += 1

    async def _sign_bundle(self, place: Place, digest: str, reference: str, hold: bool) -> bool:
        signer = cast(BundleSigner, self.signer)
        existing = await bundles_of(place.registry, place.repository, digest)
        if await asyncio.to_thread(lambda: any(signer.owns_bundle(b, digest) for b in existing)):
            return False
        bundle = await asyncio.to_thread(signer.sign_statement, statement(reference, digest))
        self.stats.signed += 1
        subject = (await self._manifest(place, digest)).descriptor()
        made = referrer(bundle, subject)
        if hold:
            await write_referrer(self.writer, place.registry, place.repository, made)
            key = (id(place.registry), place.repository, digest)
            self._held.setdefault(key, []).append(made.descriptor)
        else:
            await write_referrer(self.writer, place.registry, place.repository, made)
            entries = [*self.held_entries(place, digest), made.descriptor]
            await merge_referrers_index(
                self.writer, place.registry, place.repository, digest, entries
            )
        return True

    async def _sign_legacy(
        self, signer: Signer, place: Place, digest: str, reference: str, staging: Place | None
    ) -> bool:
        data = self.payload_for(reference, digest)
        tag = signature_tag(digest)
        incoming: list[Incoming] = []
        if staging is not None and self.copy_attached:
            theirs = await read_attached(staging.registry, staging.repository, tag)
            if theirs is not None:
                origin = staging.origin()
                incoming = [Incoming(layer, origin) for layer in theirs.parse().layers]

        def make(layers: Sequence[Descriptor]) -> SignedLayer | None:
            if any(self.is_own(layer) for layer in layers):
                return None
            return sign_layer(signer, data)

        async def own(layers: Sequence[Descriptor]) -> Incoming | None:
            # A keyless signer talks to Fulcio and Rekor with a blocking client: off the loop.
            signed = await asyncio.to_thread(make, layers)
            if signed is None:
                return None
            self.stats.signed += 1
            return Incoming(signed.descriptor, signed.payload)

        result = await self.writer.merge(
            place.registry,
            place.repository,
            tag,
            incoming,
            signer_of=self._known.signer_of,
            own=own,
        )
        return result.written

    def is_own(self, layer: Descriptor) -> bool:
        """Whether a layer is a signature by cip's signer of a payload cip knows."""
        if self.signer is None:
            return False
        signer = self._known.signer_of(layer)
        # Only asked when a layer has a known signer: a keyless signer's identity needs its
        # certificate.
        return signer is not None and signer == self.signer.identity

    def signer_of(self, layer: Descriptor) -> str | None:
        return self._known.signer_of(layer)

    async def replicate(
        self, source: Place, target: Place, digest: str, reference: str | None = None
    ) -> None:
        """Merge the `.sig` of `digest` (and of every child) from `source` into `target`.

        With the `reference` cip signs for, the payload is known, so a layer of the target
        signed by cip's key for it counts as the same signature as the source's (ECDSA
        signatures differ each time): a re-signed primary does not add a second one.
        """
        await self._once(
            ("replicate", id(source.registry), source.repository, id(target.registry),
             target.repository, digest),
            lambda: self._replicate(source, target, digest, reference),
        )  # fmt: skip

    async def _replicate(
        self, source: Place, target: Place, digest: str, reference: str | None
    ) -> None:
        children = await self._children(source, digest)
        await asyncio.gather(
            *(self.replicate(source, target, c.digest, reference) for c in children)
        )
        # The formats cip writes must be on the source; the other one is copied if there
        # (staging's, carried to the primary).
        bundles = "bundle" in self.formats
        legacy = "legacy" in self.formats
        written = bool(
            await copy_referrers(
                self.writer, source.registry, source.repository, target.registry,
                target.repository, digest, required=bundles,
            )
        )  # fmt: skip
        if legacy:
            written = await self._replicate_legacy(source, target, digest, reference) or written
        else:
            written = await self.replicate_tag(source, target, digest, "sig", required=False)
        if written:
            self.stats.replicated += 1
        else:
            self.stats.already += 1

    async def _replicate_legacy(
        self, source: Place, target: Place, digest: str, reference: str | None
    ) -> bool:
        if reference is not None:
            self.payload_for(reference, digest)
        return await self.replicate_tag(source, target, digest, "sig")

    async def replicate_tag(
        self, source: Place, target: Place, digest: str, suffix: str, *, required: bool = True
    ) -> bool:
        """Merge the source's `sha256-<hex>.<suffix>` layers into the target's; whether the
        target's tag grew. RegistryError when the source has no such tag and it is required."""
        tag = attached_tag(digest, suffix)
        theirs = await self._once(
            (suffix, id(source.registry), source.repository, digest),
            lambda: read_attached(source.registry, source.repository, tag),
        )
        if theirs is None and not required:
            return False
        if theirs is None:
            what = "signature" if suffix == "sig" else "attestation"
            raise RegistryError(
                f"no {what} to replicate: {tag} is missing on {source.registry.name}",
                registry=source.registry.name,
                image=source.repository,
                digest=digest,
            )
        origin = source.origin()
        result = await self.merge_layers(
            target, tag, [Incoming(layer, origin) for layer in theirs.parse().layers]
        )
        return result.written

    async def merge_layers(self, target: Place, tag: str, incoming: list[Incoming]) -> MergeResult:
        return await self.writer.merge(
            target.registry, target.repository, tag, incoming, signer_of=self._known.signer_of
        )
