"""Phases `provenance` and `validate`: staging's signatures and build provenance, verified
before anything is copied, in dry runs too.

Every copy and add-tag is judged (a new tag publishes an image as much as a copy does); an image
already at a destination is left as it is. Each source digest is judged once, however many
destinations and tags it has. The cost is bounded: one tag listing per source repository shows
which digests carry a `.sig`, an `.att` or a referrers tag, and only those are opened
(`trust/evidence.py` caps what one digest may cost). A digest that fails holds back every write
of it, with the reason; every other image is promoted.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field, replace

from cip.errors import CipError, RegistryError
from cip.model.refs import Registry as RegistryName
from cip.plan.planner import Action, Plan, Verdict
from cip.registry.pool import RegistryPool
from cip.trust.evidence import read_evidence
from cip.trust.judge import Judgement, Outcome, StagingPolicy, judge

JUDGED = (Action.COPY, Action.ADD_TAG)
Key = tuple[str, str, str]  # (source registry, image, digest)


@dataclass
class StagingSummary:
    """What the two phases found, per state, for their one-line summaries."""

    digests: int = 0
    signatures: Counter[str] = field(default_factory=Counter)  # valid, invalid, missing
    provenance: Counter[str] = field(default_factory=Counter)
    unreadable: int = 0
    held_back: Counter[Action] = field(default_factory=Counter)

    def line(self, kind: str) -> str:
        states = self.signatures if kind == "signature" else self.provenance
        held = [Action.SIGNATURE_INVALID, Action.SIGNATURE_MISSING]
        if kind != "signature":
            held = [Action.PROVENANCE_INVALID, Action.PROVENANCE_MISSING]
        counts = ", ".join(f"{states[s]:,} {s}" for s in ("valid", "invalid", "missing"))
        unread = f", {self.unreadable:,} unreadable" if self.unreadable else ""
        stopped = sum(self.held_back[a] for a in held)
        return (
            f"{self.digests:,} source digests checked ({counts}{unread}); "
            f"{stopped:,} image digests held back"
        )


def _action(judgement: Judgement, policy: StagingPolicy) -> tuple[Action, str] | None:
    """The verdict that holds an image back, and why; a bad signature comes first."""
    problems: list[tuple[Action, Outcome]] = []
    signature, provenance = judgement.signature, judgement.provenance
    if signature.state == "invalid":
        problems.append((Action.SIGNATURE_INVALID, signature))
    elif signature.state == "missing" and policy.require_signature:
        problems.append((Action.SIGNATURE_MISSING, signature))
    if provenance.state == "invalid":
        problems.append((Action.PROVENANCE_INVALID, provenance))
    elif provenance.state == "missing" and policy.require_provenance:
        problems.append((Action.PROVENANCE_MISSING, provenance))
    if not problems:
        return None
    reason = "; ".join(outcome.reason for _, outcome in problems)
    return problems[0][0], f"{reason}: held back"


async def _listing(pool: RegistryPool, registry: RegistryName, image: str) -> frozenset[str]:
    client, repository = pool.locate(registry, image)
    try:
        return frozenset((await client.list_tags(repository)).tags)
    except RegistryError as error:
        if error.status == 404:
            return frozenset()  # nothing attached in a repository nobody pushed a tag to
        raise


@dataclass
class StagingReader:
    """Reads and judges what staging attaches to source digests: one tag listing per source
    repository, shared by every digest in it; `cip check` shares one between its checks."""

    pool: RegistryPool
    policy: StagingPolicy
    concurrency: int = 32
    _listings: dict[tuple[str, str], asyncio.Task[frozenset[str]]] = field(default_factory=dict)
    _gate: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self._gate = asyncio.Semaphore(self.concurrency)

    async def judge(self, source: RegistryName, image: str, digest: str) -> Judgement | str:
        """The digest's signature and provenance outcomes, or why staging could not be read."""
        key = (source.name, image)
        if key not in self._listings:
            self._listings[key] = asyncio.ensure_future(_listing(self.pool, source, image))
        client, repository = self.pool.locate(source, image)
        try:
            listed = await asyncio.shield(self._listings[key])
            async with self._gate:
                evidence = await read_evidence(client, repository, digest, listed)
        except CipError as error:
            return f"staging's signatures and attestations could not be read: {error.message}"
        except OSError as error:  # an oci: layout that cannot be read
            return f"staging could not be read: {error.filename}: {error.strerror or error}"
        # Verification is CPU work (and sigstore-python's blocks): off the event loop.
        return await asyncio.to_thread(judge, evidence, digest, self.policy)


async def verify_staging(
    plan: Plan, pool: RegistryPool, policy: StagingPolicy, *, concurrency: int = 32
) -> tuple[Plan, StagingSummary]:
    """The plan with every write of an image staging fails to vouch for held back."""
    judged: dict[Key, list[int]] = {}
    sources: dict[str, RegistryName] = {}
    for index, verdict in enumerate(plan.verdicts):
        if verdict.action in JUDGED:
            group = plan.groups[verdict.group]
            judged.setdefault((group.source.name, group.image, group.digest), []).append(index)
            sources.setdefault(group.source.name, group.source)
    summary = StagingSummary(digests=len(judged))
    if not judged:
        return plan, summary
    reader = StagingReader(pool, policy, concurrency)
    keys = list(judged)
    results = await asyncio.gather(
        *(reader.judge(sources[registry], image, digest) for registry, image, digest in keys)
    )
    verdicts: list[Verdict] = list(plan.verdicts)
    for key, result in zip(keys, results, strict=True):
        if isinstance(result, str):
            summary.unreadable += 1
            held: tuple[Action, str] | None = (Action.FAILED, result)
        else:
            summary.signatures[result.signature.state] += 1
            summary.provenance[result.provenance.state] += 1
            held = _action(result, policy)
        if held is None:
            continue
        summary.held_back[held[0]] += 1
        for index in judged[key]:
            # Nothing is written there, so nothing is signed or attested there either.
            verdicts[index] = replace(
                verdicts[index], action=held[0], error=held[1], signature=None, attestation=None
            )
    return Plan(plan.groups, verdicts), summary
