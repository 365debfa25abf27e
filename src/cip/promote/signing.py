"""Phases `sign` and `attest`: every promoted digest signed once, on its primary, and its
promotion attestation made there; then both merged into every other destination.

Upstream signs after the copy and leaves mirrors to a periodic job, so a run that dies between
copy and sign leaves images unsigned for good. Here the plan carries a signature step for every
digest that lacks a `.sig` on a destination, and an attestation step for every digest some
destination lacks an `.att` for (read from the tag listing it reads anyway), so any rerun
repairs what a crash or a deletion left behind. A failure fails only that digest's verdicts,
after the copy stayed in place; the next run signs or attests it.

Both phases run digest by digest: sign the primary, attest it, then replicate both to the
mirrors, because with bundles the signature and the attestation share one referrers index that
is written once (see `SignatureService.sign`'s `hold_index`) and must exist before a mirror
copies it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from cip.errors import CipError
from cip.plan.edges import EdgeGroup
from cip.plan.planner import (
    SIGNED_ACTIONS,
    Action,
    AttestationStep,
    Plan,
    SignatureStep,
    SigningPolicy,
    Verdict,
)
from cip.registry.pool import RegistryPool
from cip.trust.attest import AttestationService
from cip.trust.signing import Place, SignatureService
from cip.trust.statements import DEFAULT_BUILDER_ID, PromotionRecord

ProgressCallback = Callable[[int], None]
DEFAULT_SIGNATURE_OPS = 50  # upstream's --max-signature-ops default
DEFAULT_SIGNATURE_COPIES = 50  # upstream's --max-signature-copies default


@dataclass(frozen=True)
class SigningSetup:
    """How a run signs: the service (signer, annotations), which destination signs, the
    signed identity's registry, and how many signing and replication steps run at once; and,
    when it attests, the attestation service, the builder id and the run's timestamp."""

    service: SignatureService
    policy: SigningPolicy
    identity_registry: str | None = None  # --signing-identity; default: the primary's name
    max_ops: int = DEFAULT_SIGNATURE_OPS
    max_copies: int = DEFAULT_SIGNATURE_COPIES
    attestations: AttestationService | None = None
    builder_id: str = DEFAULT_BUILDER_ID
    started: datetime = field(default_factory=lambda: datetime.now(UTC))

    def reference(self, primary: str, image: str) -> str:
        """The `docker-reference` the payload names (upstream rewrites it to registry.k8s.io)."""
        return f"{self.identity_registry or primary}/{image}"


@dataclass(frozen=True, slots=True)
class SignResult:
    verdict: Verdict
    error: str | None = None
    attestation: bool = False  # the error is the attestation's


def _message(error: Exception) -> str:
    if isinstance(error, CipError):
        return error.message
    if isinstance(error, OSError):  # an oci: layout folder that cannot be written
        return f"{error.filename}: {error.strerror or error}"
    raise error


async def _attempt(work: Awaitable[None]) -> str | None:
    try:
        await work
    except (CipError, OSError) as error:
        return _message(error)
    return None


def _records(plan: Plan, setup: SigningSetup) -> dict[tuple[str, str, str], PromotionRecord]:
    """(primary, image, digest) -> what its attestation names: every destination that holds the
    digest after this run (over every manifest that promotes it there), the primary first."""
    found: dict[tuple[str, str, str], tuple[EdgeGroup, list[str]]] = {}
    for verdict in plan.verdicts:
        if verdict.action not in SIGNED_ACTIONS:
            continue
        group = plan.groups[verdict.group]
        primary = setup.policy.primary_of(group).name
        key = (primary, group.image, group.digest)
        _, names = found.setdefault(key, (group, []))
        if verdict.destination.name not in names:
            names.append(verdict.destination.name)
    records: dict[tuple[str, str, str], PromotionRecord] = {}
    for (primary, image, digest), (group, names) in found.items():
        ordered = sorted(names, key=lambda name: name != primary)  # stable: manifest order
        records[(primary, image, digest)] = PromotionRecord(
            src_ref=f"{group.source.name}/{image}@{digest}",
            dst_refs=tuple(f"{name}/{image}@{digest}" for name in ordered),
            digest=digest,
            timestamp=setup.started,
            builder_id=setup.builder_id,
        )
    return records


async def sign_phase(
    plan: Plan,
    pool: RegistryPool,
    setup: SigningSetup,
    *,
    progress: ProgressCallback | None = None,
) -> list[SignResult]:
    """Run every signature and attestation step of `plan` (the plan as promoted: failed copies
    are skipped)."""
    service, attestations = setup.service, setup.attestations
    ops = asyncio.Semaphore(setup.max_ops)
    copies = asyncio.Semaphore(setup.max_copies)
    by_group: dict[int, list[Verdict]] = {}
    for verdict in plan.verdicts:
        if verdict.signature is not None or verdict.attestation is not None:
            by_group.setdefault(verdict.group, []).append(verdict)
    verdict_at = {(v.group, v.destination.name): v for v in plan.verdicts if v.group in by_group}
    records = _records(plan, setup) if attestations is not None else {}
    attested: dict[tuple[int, str, str], asyncio.Task[str | None]] = {}

    async def one_digest(index: int, steps: list[Verdict]) -> list[SignResult]:
        group = plan.groups[index]
        primary = setup.policy.primary_of(group)
        primary_place = Place(*pool.locate(primary, group.image))
        staging = Place(*pool.locate(group.source, group.image))
        primary_verdict = verdict_at.get((index, primary.name))
        reference = setup.reference(primary.name, group.image)
        results: list[SignResult] = []
        problem: str | None = None
        attest_problem: str | None = None
        if primary_verdict is None or primary_verdict.action not in SIGNED_ACTIONS:
            problem = f"not signed: the copy to {primary.name} did not happen"
            attest_problem = problem
        here = primary_verdict if any(v is primary_verdict for v in steps) else None
        attesting = here is not None and here.attestation is AttestationStep.ATTEST
        if here is not None and here.signature is SignatureStep.SIGN and problem is None:
            hold = attesting and "bundle" in service.formats
            async with ops:
                failed = await _attempt(
                    service.sign(primary_place, group.digest, reference, staging, hold_index=hold)
                )
            if failed is not None:
                problem = attest_problem = f"signing on {primary.name} failed: {failed}"
                results.append(SignResult(here, f"signing failed: {failed}"))
        if attesting and attestations is not None and here is not None and attest_problem is None:
            key = (id(primary_place.registry), primary_place.repository, group.digest)
            if key not in attested:  # several manifests may promote the digest there
                record = records[(primary.name, group.image, group.digest)]
                attested[key] = asyncio.ensure_future(
                    _attempt(attestations.attest(primary_place, record, staging))
                )
            async with ops:
                failed = await asyncio.shield(attested[key])
            if failed is not None:
                attest_problem = f"attesting on {primary.name} failed: {failed}"
                results.append(SignResult(here, f"attestation failed: {failed}", True))

        async def replicate(verdict: Verdict) -> list[SignResult]:
            if verdict.action not in SIGNED_ACTIONS:
                return [SignResult(verdict)]  # failed or refused, and says so already
            target = Place(*pool.locate(verdict.destination, group.image))
            out: list[SignResult] = []
            if verdict.signature is SignatureStep.REPLICATE:
                if problem is not None:
                    out.append(SignResult(verdict, f"signature not replicated: {problem}"))
                else:
                    async with copies:
                        failed = await _attempt(
                            service.replicate(primary_place, target, group.digest, reference)
                        )
                    if failed is not None:
                        out.append(SignResult(verdict, f"signature not replicated: {failed}"))
            if verdict.attestation is AttestationStep.REPLICATE and attestations is not None:
                if attest_problem is not None:
                    message = f"attestation not replicated: {attest_problem}"
                    out.append(SignResult(verdict, message, True))
                else:
                    async with copies:
                        failed = await _attempt(
                            attestations.replicate(primary_place, target, group.digest)
                        )
                    if failed is not None:
                        message = f"attestation not replicated: {failed}"
                        out.append(SignResult(verdict, message, True))
            return out or [SignResult(verdict)]

        mirrors = [v for v in steps if v is not here]
        for found in await asyncio.gather(*(replicate(v) for v in mirrors)):
            results.extend(found)
        if here is not None and not any(r.verdict is here for r in results):
            results.append(SignResult(here))
        service.forget()
        if progress is not None:
            progress(1)
        return results

    done = await asyncio.gather(*(one_digest(i, steps) for i, steps in by_group.items()))
    return [result for results in done for result in results]


def fold_signing(plan: Plan, results: list[SignResult]) -> Plan:
    """The plan with signing and attestation failures folded in: such a verdict fails, with
    the reason (the first, when both failed)."""
    failed: dict[int, str] = {}
    for result in results:
        if result.error is not None:
            failed.setdefault(id(result.verdict), result.error)
    verdicts = [
        replace(v, action=Action.FAILED, error=failed[id(v)]) if id(v) in failed else v
        for v in plan.verdicts
    ]
    return Plan(plan.groups, verdicts)
