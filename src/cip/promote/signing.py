"""Phase `sign`: every promoted digest signed once, on its primary, and the `.sig` replicated.

Upstream signs after the copy and leaves mirrors to a periodic job, so a run that dies between
copy and sign leaves images unsigned for good. Here the plan carries a signature step for every
digest that lacks a `.sig` on a destination (read from the tag listing it reads anyway), so any
rerun repairs what a crash or a deletion left behind. A failure fails only that digest's
verdicts, after the copy stayed in place; the next run signs it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace

from cip.errors import CipError
from cip.plan.planner import SIGNED_ACTIONS, Action, Plan, SignatureStep, SigningPolicy, Verdict
from cip.registry.pool import RegistryPool
from cip.trust.signing import Place, SignatureService

ProgressCallback = Callable[[int], None]
DEFAULT_SIGNATURE_OPS = 50  # upstream's --max-signature-ops default
DEFAULT_SIGNATURE_COPIES = 50  # upstream's --max-signature-copies default


@dataclass(frozen=True)
class SigningSetup:
    """How a run signs: the service (signer, annotations), which destination signs, the
    signed identity's registry, and how many signing and replication steps run at once."""

    service: SignatureService
    policy: SigningPolicy
    identity_registry: str | None = None  # --signing-identity; default: the primary's name
    max_ops: int = DEFAULT_SIGNATURE_OPS
    max_copies: int = DEFAULT_SIGNATURE_COPIES

    def reference(self, primary: str, image: str) -> str:
        """The `docker-reference` the payload names (upstream rewrites it to registry.k8s.io)."""
        return f"{self.identity_registry or primary}/{image}"


@dataclass(frozen=True, slots=True)
class SignResult:
    verdict: Verdict
    error: str | None = None


def _message(error: Exception) -> str:
    if isinstance(error, CipError):
        return error.message
    if isinstance(error, OSError):  # an oci: layout folder that cannot be written
        return f"{error.filename}: {error.strerror or error}"
    raise error


async def sign_phase(
    plan: Plan,
    pool: RegistryPool,
    setup: SigningSetup,
    *,
    progress: ProgressCallback | None = None,
) -> list[SignResult]:
    """Run every signature step of `plan` (the plan as promoted: failed copies are skipped)."""
    service = setup.service
    ops = asyncio.Semaphore(setup.max_ops)
    copies = asyncio.Semaphore(setup.max_copies)
    by_group: dict[int, list[Verdict]] = {}
    for verdict in plan.signature_steps():
        by_group.setdefault(verdict.group, []).append(verdict)
    verdict_at = {(v.group, v.destination.name): v for v in plan.verdicts if v.group in by_group}

    async def one_digest(index: int, steps: list[Verdict]) -> list[SignResult]:
        group = plan.groups[index]
        primary = setup.policy.primary_of(group)
        primary_place = Place(*pool.locate(primary, group.image))
        primary_verdict = verdict_at.get((index, primary.name))
        reference = setup.reference(primary.name, group.image)
        results: list[SignResult] = []
        problem: str | None = None
        if primary_verdict is None or primary_verdict.action not in SIGNED_ACTIONS:
            problem = f"not signed: the copy to {primary.name} did not happen"
        for verdict in steps:
            if verdict.signature is SignatureStep.SIGN and problem is None:
                try:
                    async with ops:
                        await service.sign(
                            primary_place,
                            group.digest,
                            reference,
                            Place(*pool.locate(group.source, group.image)),
                        )
                except (CipError, OSError) as error:
                    problem = f"signing on {primary.name} failed: {_message(error)}"
                    results.append(SignResult(verdict, f"signing failed: {_message(error)}"))
                    continue
                results.append(SignResult(verdict))

        async def replicate(verdict: Verdict) -> SignResult:
            if verdict.action not in SIGNED_ACTIONS:
                return SignResult(verdict)  # failed or refused, and says so already
            if problem is not None:
                return SignResult(verdict, f"signature not replicated: {problem}")
            try:
                async with copies:
                    target = Place(*pool.locate(verdict.destination, group.image))
                    await service.replicate(primary_place, target, group.digest, reference)
            except (CipError, OSError) as error:
                return SignResult(verdict, f"signature not replicated: {_message(error)}")
            return SignResult(verdict)

        mirrors = [v for v in steps if v.signature is SignatureStep.REPLICATE]
        results.extend(await asyncio.gather(*(replicate(v) for v in mirrors)))
        service.forget()
        if progress is not None:
            progress(1)
        return results

    done = await asyncio.gather(*(one_digest(i, steps) for i, steps in by_group.items()))
    return [result for results in done for result in results]


def fold_signing(plan: Plan, results: list[SignResult]) -> Plan:
    """The plan with signing failures folded in: such a verdict fails, with the reason."""
    failed = {id(r.verdict): r.error for r in results if r.error is not None}
    verdicts = [
        replace(v, action=Action.FAILED, error=failed[id(v)]) if id(v) in failed else v
        for v in plan.verdicts
    ]
    return Plan(plan.groups, verdicts)
