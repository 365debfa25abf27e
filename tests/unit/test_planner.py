"""The planner with literal edges and inventories: every verdict, no network."""

from __future__ import annotations

from cip.model.inventory import Inventory, RepositoryFacts
from cip.model.manifest import Position
from cip.model.refs import Registry
from cip.plan.edges import EdgeGroup
from cip.plan.planner import Action, TagMove, plan, wanted_facts
from tests.unit.conftest import D1, D2, D3

SRC = Registry.parse("gcr.io/staging")
PROD = Registry.parse("us.gcr.io/prod")
EU = Registry.parse("eu.gcr.io/prod")
HERE = Position("m.yaml", 1, 1)


def group(digest: str, *tags: str, image: str = "app") -> EdgeGroup:
    return EdgeGroup(0, image, digest, tuple(tags), SRC, (PROD,), HERE)


def inventory(
    dest: RepositoryFacts | None = None, source: RepositoryFacts | None = None
) -> Inventory:
    inv = Inventory()
    if dest is not None:
        inv.repositories[(PROD.name, "app")] = dest
    if source is not None:
        inv.repositories[(SRC.name, "app")] = source
    return inv


def test_present_when_tag_points_at_digest() -> None:
    result = plan([group(D1, "1.0")], inventory(RepositoryFacts(tags={"1.0": D1})))
    [verdict] = result.verdicts
    assert verdict.action is Action.PRESENT
    assert verdict.tags_present == ("1.0",)
    assert not result.has_problems
    assert result.writes() == []


def test_copy_when_only_source_has_it() -> None:
    result = plan(
        [group(D1, "1.0", "latest")],
        inventory(RepositoryFacts(digests={D1: False}), RepositoryFacts(digests={D1: True})),
    )
    [verdict] = result.verdicts
    assert verdict.action is Action.COPY
    assert verdict.tags_to_add == ("1.0", "latest")
    assert result.edge_counts() == {Action.COPY: 2}


def test_add_tag_when_digest_already_there() -> None:
    dest = RepositoryFacts(tags={"1.0": D1})
    result = plan([group(D1, "1.0", "latest")], inventory(dest))
    [verdict] = result.verdicts
    assert verdict.action is Action.ADD_TAG
    assert verdict.tags_present == ("1.0",)
    assert verdict.tags_to_add == ("latest",)
    assert result.edge_counts() == {Action.PRESENT: 1, Action.ADD_TAG: 1}


def test_lost_when_in_neither() -> None:
    result = plan(
        [group(D1, "1.0")],
        inventory(RepositoryFacts(digests={D1: False}), RepositoryFacts(digests={D1: False})),
    )
    assert result.verdicts[0].action is Action.LOST
    assert result.has_problems


def test_tag_move_refused_and_nothing_else_of_the_digest_written_there() -> None:
    dest = RepositoryFacts(tags={"latest": D2}, digests={D1: False})
    result = plan(
        [group(D1, "1.0", "latest")], inventory(dest, RepositoryFacts(digests={D1: True}))
    )
    [verdict] = result.verdicts
    assert verdict.action is Action.TAG_MOVE
    assert verdict.tags_to_add == ("1.0",)  # held back
    assert verdict.tag_moves == (TagMove("latest", D2),)
    assert result.has_problems
    assert result.writes() == []
    assert result.edge_counts() == {Action.TAG_MOVE: 2}


def test_failed_destination_fails_only_its_edges() -> None:
    inv = inventory(None, RepositoryFacts(digests={D1: True}))
    inv.repositories[(PROD.name, "app")] = RepositoryFacts(error="HTTP 500 from us.gcr.io")
    inv.repositories[(PROD.name, "other")] = RepositoryFacts(tags={"1": D3})
    result = plan([group(D1, "1.0"), group(D3, "1", image="other")], inv)
    assert [v.action for v in result.verdicts] == [Action.FAILED, Action.PRESENT]
    assert result.verdicts[0].error == "HTTP 500 from us.gcr.io"


def test_tagless_digest() -> None:
    dest = RepositoryFacts(digests={D1: True})
    result = plan([group(D1)], inventory(dest))
    assert result.verdicts[0].action is Action.PRESENT
    assert result.edge_counts() == {Action.PRESENT: 1}


def test_wanted_facts_per_destination_repository() -> None:
    groups = [
        EdgeGroup(0, "app", D1, ("1.0",), SRC, (PROD, EU), HERE),
        EdgeGroup(0, "app", D2, ("2.0", "latest"), SRC, (PROD, EU), HERE),
    ]
    wanted = wanted_facts(groups)
    assert set(wanted) == {(PROD.name, "app"), (EU.name, "app")}
    facts = wanted[(PROD.name, "app")]
    assert facts.tags == {"1.0", "2.0", "latest"}
    assert facts.digests == {D1, D2}
    assert facts.source == (SRC.name, "app")


def test_wanted_facts_of_a_repository_two_manifests_promote_into() -> None:
    """Subprojects may promote the same image name into the same mirror: the repository must
    be asked about both manifests' digests, the others only about their own."""
    other_src = Registry.parse("gcr.io/other-staging")
    groups = [
        EdgeGroup(0, "app", D1, ("1.0",), SRC, (PROD, EU), HERE),
        EdgeGroup(1, "app", D2, ("2.0",), other_src, (PROD,), HERE),
        EdgeGroup(1, "app", D3, ("3.0",), other_src, (PROD,), HERE),
    ]
    wanted = wanted_facts(groups)
    both, eu = wanted[(PROD.name, "app")], wanted[(EU.name, "app")]
    assert (both.tags, both.digests) == ({"1.0", "2.0", "3.0"}, {D1, D2, D3})
    assert both.source == (SRC.name, "app")  # the first manifest naming it
    assert (eu.tags, eu.digests) == ({"1.0"}, {D1})
