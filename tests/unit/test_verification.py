"""`cip verify`'s judgement with literal edges and facts: every kind of gap, no network."""

from __future__ import annotations

from cip.model.inventory import Inventory, RepositoryFacts
from cip.model.manifest import Position
from cip.model.refs import Registry
from cip.plan.edges import EdgeGroup
from cip.plan.verification import Gap, GapKind, verify
from tests.unit.conftest import D1, D2, D3

SRC = Registry.parse("gcr.io/staging")
PROD = Registry.parse("us.gcr.io/prod")
EU = Registry.parse("eu.gcr.io/prod")
HERE = Position("m.yaml", 3, 5)


def group(digest: str, *tags: str) -> EdgeGroup:
    return EdgeGroup(0, "app", digest, tuple(tags), SRC, (PROD, EU), HERE)


def facts(prod: RepositoryFacts, eu: RepositoryFacts) -> Inventory:
    inventory = Inventory()
    inventory.repositories[(PROD.name, "app")] = prod
    inventory.repositories[(EU.name, "app")] = eu
    return inventory


def test_everything_in_place_holds_no_gap() -> None:
    held = RepositoryFacts(tags={"1.0": D1, "latest": D1}, digests={D1: True, D2: True})
    result = verify([group(D1, "1.0", "latest"), group(D2)], facts(held, held))
    assert (result.edges, result.in_place, result.gaps) == (6, 6, [])


def test_every_kind_of_gap_is_named_per_edge() -> None:
    prod = RepositoryFacts(tags={"1.0": D1, "latest": D3}, digests={D1: True, D2: False})
    eu = RepositoryFacts(error="GET tags/list: 503 Service Unavailable")
    groups = [group(D1, "1.0", "latest", "extra"), group(D2, "2.0"), group(D2)]
    result = verify(groups, facts(prod, eu))
    assert result.edges == (3 + 1 + 1) * 2
    prod_gaps = [g for g in result.gaps if g.destination == PROD]
    assert prod_gaps == [
        Gap(0, PROD, "latest", GapKind.TAG_ELSEWHERE, current=D3),
        Gap(0, PROD, "extra", GapKind.TAG_MISSING),
        Gap(1, PROD, "2.0", GapKind.MISSING),
        Gap(2, PROD, None, GapKind.MISSING),  # an untagged edge whose digest is absent
    ]
    eu_gaps = [g for g in result.gaps if g.destination == EU]
    assert [(g.tag, g.kind) for g in eu_gaps] == [
        ("1.0", GapKind.UNREADABLE), ("latest", GapKind.UNREADABLE),
        ("extra", GapKind.UNREADABLE), ("2.0", GapKind.UNREADABLE), (None, GapKind.UNREADABLE),
    ]  # fmt: skip
    assert all(g.error == "GET tags/list: 503 Service Unavailable" for g in eu_gaps)
    assert result.in_place == 1  # prod app:1.0
    assert result.gap_counts() == {
        GapKind.MISSING: 2, GapKind.TAG_MISSING: 1, GapKind.TAG_ELSEWHERE: 1,
        GapKind.UNREADABLE: 5,
    }  # fmt: skip


def test_a_destination_never_read_is_unreadable_not_in_place() -> None:
    result = verify([group(D1, "1.0")], Inventory())
    assert {g.kind for g in result.gaps} == {GapKind.UNREADABLE}
    assert result.in_place == 0
