"""The rules: does a change to a production registry agree with the manifests?

One event in, one `Decision` out. The rules, in the order they are tried:
- an invalid message is rejected with upstream's words; a deletion is rejected unless
  `--allow-deletions` and no manifest lists what was deleted;
- a tag is verified when the manifests promote that tag to that repository as that digest
  (tags pointing at another digest are rejected: tags never move);
- a digest is verified when it is promoted to that repository; or, when the repository is a
  promoted one, when it is a child of an index promoted there: listed for that registry under
  any name (issue 402), a child of an index seen before, or of one read now;
- attached artifacts (`sha256-<hex>[.sig|.att|.sbom]` tags, manifests with a `subject`) are
  verified when their subject is.
A registry that cannot be read makes an *error*, never a rejection: the message comes again.
"""

from __future__ import annotations

import re

from cip.audit.events import MANIFEST_TYPES, RegistryEvent
from cip.audit.parents import IndexCache, ManifestReader
from cip.audit.promises import Promises, RepositoryPromise
from cip.audit.verdicts import Decision, Rule, Verdict, failed, rejected, verified
from cip.errors import CipError, RegistryError
from cip.oci.media import INDEX_TYPES

# cosign's tag scheme (`.sig`, `.att`, `.sbom`) and the referrers tag schema of
# distribution-spec 1.1 (`sha256-<hex>`, no suffix) both name the subject digest.
ATTACHED_TAG = re.compile(r"sha256-(?P<hex>[0-9a-f]{64})(?:\.(?:sig|att|sbom))?")


def attached_subject(tag: str) -> str | None:
    """The digest an attached-artifact tag belongs to, or None for an ordinary tag."""
    match = ATTACHED_TAG.fullmatch(tag)
    return f"sha256:{match['hex']}" if match else None


class Auditor:
    def __init__(
        self, promises: Promises, reader: ManifestReader, *, allow_deletions: bool = False
    ) -> None:
        self.promises = promises
        self.reader = reader
        self.allow_deletions = allow_deletions

    @property
    def cache(self) -> IndexCache:
        return self.reader.cache

    async def judge(self, event: RegistryEvent) -> Decision:
        try:
            return await self._judge(event)
        except RegistryError as error:  # a registry that did not answer, or refused
            where = error.registry or event.registry or "a registry"
            return failed(event, f"cannot read {where}: {error.message}")
        except CipError as error:
            return failed(event, error.message)

    def learn(self, event: RegistryEvent) -> None:
        """Keep what a push says of its manifest's children (Distribution's `references`)."""
        if event.kind != "push" or event.digest is None:
            return
        if event.media_type in INDEX_TYPES:
            # Only when the message lists them: a registry configured without
            # `includereferences`, or a listing, names an index without its children.
            if event.children:
                self.cache.remember(event.digest, event.children)
        elif event.media_type in MANIFEST_TYPES:
            self.cache.remember(event.digest, ())

    async def _judge(self, event: RegistryEvent) -> Decision:
        if event.kind == "invalid":
            return rejected(event, Rule.INVALID_MESSAGE, event.problem or "invalid message")
        self.learn(event)
        if event.kind == "delete":
            return self._deletion(event)
        registry, repository = event.registry or "", event.repository or ""
        promise = self.promises.repository(registry, repository)
        if event.tag is not None:
            subject = attached_subject(event.tag)
            if subject is not None:
                return await self._attached(event, promise, subject)
            return await self._tagged(event, promise, event.tag)
        assert event.digest is not None  # parsing refused events with neither
        return await self._digest(event, promise, event.digest)

    async def _tagged(
        self, event: RegistryEvent, promise: RepositoryPromise | None, tag: str
    ) -> Decision:
        where = f"{event.registry}/{event.repository}"
        expected = promise.tags.get(tag) if promise is not None else None
        digest = event.digest
        if digest is None and expected is not None:
            # A tag-only message (Pub/Sub allows it): what the tag points at decides.
            digest = await self.reader.resolve_tag(
                event.registry or "", event.repository or "", tag
            )
            if digest is None:
                reason = f"{where}:{tag} is gone: the digest it was pushed as cannot be checked"
                return rejected(event, Rule.NOT_PROMOTED, reason)
        if promise is not None and expected is not None:
            manifest = str(promise.tag_positions[tag])
            if expected == digest:
                reason = f"{where}:{tag} is promoted as {digest}"
                return verified(event, Rule.PROMOTED, reason, manifest=manifest)
            reason = f"{where}:{tag} is promoted as {expected}, not {digest}"
            return rejected(event, Rule.TAG_MISMATCH, reason, manifest=manifest)
        if promise is not None and digest in promise.digests:
            listing = promise.digests[digest]
            reason = f"{digest} is promoted to {where} ({listing.image}), but not with tag {tag}"
            return rejected(event, Rule.TAG_NOT_PROMOTED, reason, manifest=str(listing.position))
        return rejected(event, Rule.NOT_PROMOTED, f"no manifest promotes {where}:{tag}")

    async def _digest(
        self,
        event: RegistryEvent,
        promise: RepositoryPromise | None,
        digest: str,
        *,
        referrers: bool = True,
    ) -> Decision:
        registry, repository = event.registry or "", event.repository or ""
        where = f"{registry}/{repository}"
        if promise is None:
            return rejected(event, Rule.NOT_PROMOTED, f"no manifest promotes anything to {where}")
        listing = promise.digests.get(digest)
        if listing is not None:
            reason = f"{digest} is promoted to {where}"
            return verified(event, Rule.PROMOTED, reason, manifest=str(listing.position))
        listed = self.promises.listed_for(registry, repository, digest)
        if listed is not None:
            reason = (
                f"{digest} is listed as {listed.image} for this registry: a child image "
                f"arrives under its index's repository"
            )
            return verified(event, Rule.CHILD_IN_MANIFESTS, reason, manifest=str(listed.position))
        found = self._promoted_parent(event, promise, digest, Rule.CHILD_OF_CACHED_INDEX)
        if found is not None:
            return found
        await self.reader.read_promoted(registry, repository, promise)
        found = self._promoted_parent(event, promise, digest, Rule.CHILD_OF_READ_INDEX)
        if found is not None:
            return found
        if referrers:
            parsed = await self.reader.manifest(registry, repository, digest)
            if parsed is not None and parsed.subject is not None:
                subject = parsed.subject.digest
                judged = await self._digest(event, promise, subject, referrers=False)
                if judged.verdict is not Verdict.REJECTED:
                    return self._attached_decision(event, judged, f"{digest} refers to {subject}")
        reason = f"{digest} is not promoted to {where}, nor a child of an index promoted there"
        return rejected(event, Rule.NOT_PROMOTED, reason)

    def _promoted_parent(
        self, event: RegistryEvent, promise: RepositoryPromise, digest: str, rule: Rule
    ) -> Decision | None:
        for parent in sorted(self.cache.parents_of(digest)):
            listing = promise.digests.get(parent)
            if listing is not None:
                reason = (
                    f"{digest} is a child of the index {parent}, promoted to "
                    f"{event.registry}/{event.repository}"
                )
                return verified(event, rule, reason, manifest=str(listing.position), parent=parent)
        return None

    async def _attached(
        self, event: RegistryEvent, promise: RepositoryPromise | None, subject: str
    ) -> Decision:
        judged = await self._digest(event, promise, subject, referrers=False)
        tag = f"{event.registry}/{event.repository}:{event.tag}"
        if judged.verdict is Verdict.REJECTED:
            reason = f"{tag} is attached to {subject}: {judged.reason}"
            return rejected(event, Rule.NOT_PROMOTED, reason)
        return self._attached_decision(event, judged, f"{tag} is attached to {subject}")

    @staticmethod
    def _attached_decision(event: RegistryEvent, subject: Decision, what: str) -> Decision:
        if subject.verdict is Verdict.ERROR:
            return failed(event, subject.reason)
        reason = f"{what}, which is verified ({subject.rule}: {subject.reason})"
        return verified(event, Rule.ATTACHED_ARTIFACT, reason, manifest=subject.manifest)

    def _deletion(self, event: RegistryEvent) -> Decision:
        if not self.allow_deletions:
            return rejected(event, Rule.DELETION, "deletions are prohibited")
        registry, repository = event.registry or "", event.repository or ""
        where = f"{registry}/{repository}"
        promise = self.promises.repository(registry, repository)
        if promise is not None and event.tag is not None and event.tag in promise.tags:
            reason = f"{where}:{event.tag} is still promoted"
            manifest = str(promise.tag_positions[event.tag])
            return rejected(event, Rule.DELETION, reason, manifest=manifest)
        digest = event.digest
        if digest is not None:
            still = self._still_listed(promise, registry, repository, digest)
            if still is not None:
                reason = f"{digest} is still listed for {where}"
                return rejected(event, Rule.DELETION, reason, manifest=still)
        what = " and ".join(x for x in (f"tag {event.tag}" if event.tag else "", digest or "") if x)
        reason = f"no manifest lists {what} for {where} any more"
        return verified(event, Rule.DELETION_ALLOWED, reason)

    def _still_listed(
        self, promise: RepositoryPromise | None, registry: str, repository: str, digest: str
    ) -> str | None:
        """Where a manifest still claims `digest` for a promoted repository (also as a child)."""
        if promise is None:
            return None
        listing = promise.digests.get(digest)
        if listing is not None:
            return str(listing.position)
        for parent in sorted(self.cache.parents_of(digest)):
            if parent in promise.digests:
                return str(promise.digests[parent].position)
        listed = self.promises.listed_for(registry, repository, digest)
        return str(listed.position) if listed is not None else None
