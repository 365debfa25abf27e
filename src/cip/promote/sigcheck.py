"""`cip sigcheck`: every promoted digest on every destination carries a signature that verifies.

The same inventory a run reads (one tag listing per destination repository, HEADs for what it
does not show) says which digests are there and which have a `.sig` tag; then each present
digest's manifest is read (an index's children are checked too) and each `.sig` is opened and
verified against the key, payload bytes as stored. With `--confirm`, a missing or invalid
signature is repaired: merged from another destination of the same image where it verifies,
else signed anew (needs a signer). Findings are data; `report/` renders them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace

from cip.errors import CipError
from cip.model.inventory import Inventory
from cip.model.refs import Registry as RegistryName
from cip.plan.edges import EdgeGroup
from cip.promote.inventory import InventoryReader
from cip.promote.signing import SigningSetup
from cip.promote.tally import Tally
from cip.registry.client import Registry
from cip.registry.pool import RegistryPool
from cip.trust.attached import signature_tag
from cip.trust.signer import Verifier
from cip.trust.signing import Place
from cip.trust.simplesigning import claims_problem, parse_payload
from cip.trust.store import read_attached, read_blob


@dataclass(frozen=True, slots=True)
class SignatureFinding:
    """A digest on a destination without a valid signature, and what `--confirm` did."""

    registry: str
    image: str
    digest: str
    problem: str  # "missing" or "invalid"
    detail: str
    parent: str | None = None  # the index this digest is a child of
    where: str = ""  # the manifest line that promotes it
    repaired: str | None = None  # how: "merged from REG" or "signed"
    repair_error: str | None = None


@dataclass
class SigcheckResult:
    checked: int  # digests checked, children included, per destination
    findings: list[SignatureFinding]
    errors: list[SignatureFinding]  # digests that could not be read at all

    @property
    def ok(self) -> bool:
        unrepaired = [f for f in self.findings if f.repaired is None]
        return not unrepaired and not self.errors


async def _verify(
    registry: Registry, repository: str, digest: str, verifier: Verifier
) -> str | None:
    """None when `digest` carries a signature `verifier` accepts, else why not."""
    manifest = await read_attached(registry, repository, signature_tag(digest))
    if manifest is None:
        return "missing"
    reasons: list[str] = []
    for layer in manifest.parse().layers:
        data = await read_blob(registry, repository, layer.digest)
        try:
            problem = claims_problem(parse_payload(data), digest)
        except ValueError as error:
            problem = str(error)
        if problem is None:
            problem = verifier.problem(data, layer.annotations)
        if problem is None:
            return None
        reasons.append(problem)
    return "; ".join(sorted(set(reasons))) or "the signature tag holds no layer"


@dataclass(frozen=True, slots=True)
class _Target:
    destination: RegistryName
    group: EdgeGroup


async def check_signatures(
    groups: Sequence[EdgeGroup],
    pool: RegistryPool,
    verifier: Verifier,
    *,
    concurrency: int = 32,
    tally: Tally | None = None,
    inventory: Inventory | None = None,
) -> SigcheckResult:
    """`tally`, when given, counts digests per destination (children with their index); one
    a destination lacks, or that could not be read, is checked once the inventory says so.
    `inventory`, when the caller already read the destinations (`cip verify`), saves reading
    them again."""
    tally = tally if tally is not None else Tally("digests", "checked")
    wanted = {(d.name, g.image, g.digest) for g in groups for d in g.destinations}
    tally.expect(len(wanted))
    if inventory is None:
        inventory = await InventoryReader(pool, concurrency=concurrency).read(groups)
    limit = asyncio.Semaphore(concurrency)
    targets: dict[tuple[str, str, str], _Target] = {}
    for group in groups:
        for destination in group.destinations:
            facts = inventory.get(destination.name, group.image)
            if facts is not None and facts.error is None and facts.has_digest(group.digest):
                targets.setdefault(
                    (destination.name, group.image, group.digest), _Target(destination, group)
                )
    tally.started(len(wanted) - len(targets))
    tally.finished(len(wanted) - len(targets))
    findings: list[SignatureFinding] = []
    errors: list[SignatureFinding] = []
    checked = 0

    async def check(target: _Target, digest: str, parent: str | None) -> None:
        nonlocal checked
        group = target.group
        client, repository = pool.locate(target.destination, group.image)
        base = SignatureFinding(
            target.destination.name, group.image, digest, "missing", "", parent,
            str(group.position),
        )  # fmt: skip
        try:
            async with limit:
                parsed = (await client.get_manifest(repository, digest)).parse()
                verdict = await _verify(client, repository, digest, verifier)
        except (CipError, OSError) as error:
            message = error.message if isinstance(error, CipError) else str(error)
            errors.append(replace(base, problem="unreadable", detail=message))
            return
        checked += 1
        if verdict == "missing":
            findings.append(replace(base, detail=f"no {signature_tag(digest)} tag"))
        elif verdict is not None:
            findings.append(replace(base, problem="invalid", detail=verdict))
        if parsed.is_index:
            await asyncio.gather(*(check(target, c.digest, digest) for c in parsed.children))

    async def counted(target: _Target, digest: str) -> None:
        tally.started()
        await check(target, digest, None)
        tally.finished()

    await asyncio.gather(*(counted(t, key[2]) for key, t in targets.items()))
    order = lambda f: (f.image, f.digest, f.registry)  # noqa: E731
    return SigcheckResult(checked, sorted(findings, key=order), sorted(errors, key=order))


async def repair_signatures(
    result: SigcheckResult,
    groups: Sequence[EdgeGroup],
    pool: RegistryPool,
    setup: SigningSetup,
) -> SigcheckResult:
    """Merge a valid signature from another destination, else sign (when the setup has a
    signer); each finding says how it was repaired, or why not."""
    service = setup.service
    bad = {(f.registry, f.image, f.digest) for f in result.findings} | {
        (f.registry, f.image, f.digest) for f in result.errors
    }
    by_image: dict[tuple[str, str], list[tuple[EdgeGroup, RegistryName]]] = {}
    for group in groups:
        for destination in group.destinations:
            by_image.setdefault((group.image, group.digest), []).append((group, destination))

    async def repair(finding: SignatureFinding) -> SignatureFinding:
        top = finding.parent or finding.digest
        candidates = by_image.get((finding.image, top), [])
        target = next((d for _, d in candidates if d.name == finding.registry), None)
        if target is None:
            return finding
        place = Place(*pool.locate(target, finding.image))
        group = candidates[0][0]
        reference = setup.reference(setup.policy.primary_of(group).name, finding.image)
        for _, other in candidates:
            if other.name == finding.registry or (other.name, finding.image, finding.digest) in bad:
                continue
            try:
                await service.replicate(
                    Place(*pool.locate(other, finding.image)), place, finding.digest, reference
                )
            except (CipError, OSError):
                continue
            return replace(finding, repaired=f"merged from {other.name}")
        if service.signer is None:
            return replace(finding, repair_error="no valid signature elsewhere and no signer")
        try:
            await service.sign(place, finding.digest, reference)
        except (CipError, OSError) as error:
            message = error.message if isinstance(error, CipError) else str(error)
            return replace(finding, repair_error=message)
        return replace(finding, repaired="signed")

    repaired = await asyncio.gather(*(repair(f) for f in result.findings))
    return SigcheckResult(result.checked, list(repaired), result.errors)
