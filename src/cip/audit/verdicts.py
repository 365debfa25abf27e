"""Verdicts as data: one vocabulary for the service, its logs, its metrics and reconcile.

*verified*: the manifests explain the change. *rejected*: they do not (an alarm; answered 200
so Pub/Sub does not redeliver, as upstream did). *error*: the auditor could not decide, e.g. a
registry was unreachable (answered 500 so the message is redelivered). Every decision names the
rule that decided it, so an operator can tell a promoted image from a recognised child.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from cip.audit.events import RegistryEvent


class Verdict(StrEnum):
    VERIFIED = "verified"
    REJECTED = "rejected"
    ERROR = "error"


class Rule(StrEnum):
    # verified
    PROMOTED = "promoted"  # the digest (and tag) is promoted to that repository
    CHILD_IN_MANIFESTS = "child-in-manifests"  # listed for a destination on that registry
    CHILD_OF_CACHED_INDEX = "child-of-cached-index"  # child of an index read before
    CHILD_OF_READ_INDEX = "child-of-read-index"  # child of a promoted index, read now
    ATTACHED_ARTIFACT = "attached-artifact"  # signature, attestation, SBOM, referrer
    DELETION_ALLOWED = "deletion-allowed"  # --allow-deletions, and no manifest lists it
    # rejected
    INVALID_MESSAGE = "invalid-message"
    DELETION = "deletion"
    TAG_MISMATCH = "tag-mismatch"  # the tag is promoted, as another digest
    TAG_NOT_PROMOTED = "tag-not-promoted"  # the digest is promoted, without that tag
    NOT_PROMOTED = "not-promoted"
    # error
    REGISTRY_ERROR = "registry-error"


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict on one event, with the rule that decided and why, in words."""

    verdict: Verdict
    rule: Rule
    reason: str
    event: RegistryEvent
    manifest: str | None = None  # file:line:column of the manifest entry that decided
    parent: str | None = None  # the index digest, for the child rules

    @property
    def final(self) -> bool:
        """Whether asking again could change it: an error may pass once the registry answers."""
        return self.verdict is not Verdict.ERROR


def verified(event: RegistryEvent, rule: Rule, reason: str, **where: str | None) -> Decision:
    return Decision(Verdict.VERIFIED, rule, reason, event, **where)


def rejected(event: RegistryEvent, rule: Rule, reason: str, **where: str | None) -> Decision:
    return Decision(Verdict.REJECTED, rule, reason, event, **where)


def failed(event: RegistryEvent, reason: str) -> Decision:
    return Decision(Verdict.ERROR, Rule.REGISTRY_ERROR, reason, event)
