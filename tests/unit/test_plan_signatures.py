"""The plan knows signatures: sign / replicate-signature steps from the tag listing alone."""

from __future__ import annotations

from pathlib import Path

from cip.model.inventory import Inventory, RepositoryFacts
from cip.model.manifest import Position
from cip.model.refs import Registry
from cip.plan.edges import EdgeGroup
from cip.plan.planner import Action, Plan, SignatureStep, SigningPolicy, plan
from cip.promote.pipeline import load_and_validate
from tests.unit.conftest import D1, D2, write

SRC = Registry.parse("gcr.io/staging")
PROD = Registry.parse("us.gcr.io/prod")
EU = Registry.parse("eu.gcr.io/prod")
ASIA = Registry.parse("asia.gcr.io/prod")
HERE = Position("m.yaml", 1, 1)


def _group(digest: str = D1) -> EdgeGroup:
    return EdgeGroup(0, "app", digest, ("1.0",), SRC, (PROD, EU, ASIA), HERE)


def _inventory(**facts: RepositoryFacts) -> Inventory:
    inv = Inventory()
    names = {"prod": PROD, "eu": EU, "asia": ASIA, "src": SRC}
    for key, value in facts.items():
        inv.repositories[(names[key].name, "app")] = value
    return inv


def _steps(result_plan: Plan) -> dict[str, SignatureStep | None]:
    return {v.destination.name: v.signature for v in result_plan.verdicts}


def test_without_a_signer_the_plan_has_no_signature_steps() -> None:
    inv = _inventory(prod=RepositoryFacts(tags={"1.0": D1}), eu=RepositoryFacts(tags={"1.0": D1}),
                     asia=RepositoryFacts(tags={"1.0": D1}))  # fmt: skip
    assert set(_steps(plan([_group()], inv)).values()) == {None}


def test_primary_signs_mirrors_replicate_and_signed_destinations_do_nothing() -> None:
    inv = _inventory(
        prod=RepositoryFacts(tags={"1.0": D1}),  # present, unsigned: the primary signs
        eu=RepositoryFacts(tags={"1.0": D1}, signed={D1}),  # present and signed
        asia=RepositoryFacts(digests={D1: False}),  # copied now, then replicated
        src=RepositoryFacts(digests={D1: True}),
    )
    result = plan([_group()], inv, SigningPolicy())
    assert _steps(result) == {
        PROD.name: SignatureStep.SIGN,
        EU.name: None,
        ASIA.name: SignatureStep.REPLICATE,
    }
    assert result.signature_counts() == {SignatureStep.SIGN: 1, SignatureStep.REPLICATE: 1}
    assert not result.has_problems
    # --primary-registry moves the signing to another destination.
    moved = plan([_group()], inv, SigningPolicy(primary=ASIA.name))
    assert _steps(moved)[ASIA.name] is SignatureStep.SIGN
    assert _steps(moved)[PROD.name] is SignatureStep.REPLICATE


def test_lost_and_failed_digests_get_no_signature_step() -> None:
    inv = _inventory(
        prod=RepositoryFacts(digests={D1: False}),
        eu=RepositoryFacts(error="connection refused"),
        asia=RepositoryFacts(digests={D1: False}),
        src=RepositoryFacts(digests={D1: False}),
    )
    result = plan([_group()], inv, SigningPolicy())
    assert {v.action for v in result.verdicts} == {Action.LOST, Action.FAILED}
    assert set(_steps(result).values()) == {None}


def test_attached_artifact_tags_in_a_manifest_are_neither_promoted_nor_moves(
    tmp_path: Path,
) -> None:
    sig = "sha256-" + "1" * 64 + ".sig"
    path = write(
        tmp_path / "m.yaml",
        f"""
        registries:
        - name: gcr.io/staging
          src: true
        - name: us.gcr.io/prod
        images:
        - name: app
          dmap:
            "{D1}": ["1.0", "{sig}"]
            "{D2}": ["sha256-{"2" * 64}"]
        """,
    )
    validated = load_and_validate([str(path)], [])
    assert [g.tags for g in validated.groups] == [("1.0",), ()]
    messages = [w.message for w in validated.warnings]
    assert len(messages) == 2
    assert all("attached content" in m and "not promoted" in m for m in messages)
    inv = _inventory(prod=RepositoryFacts(tags={"1.0": D1, sig: D2}))
    [verdict, _] = plan(validated.groups, inv).verdicts
    assert verdict.action is Action.PRESENT
    assert verdict.tag_moves == ()
