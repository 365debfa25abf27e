"""cip's registry client against the synthetic registry that the scale benchmarks use.

The simulator must answer the way the registries it stands for do, or the benchmarks measure
nothing real: Distribution's tags/list and manifest HEADs, Google's tags/list `manifest` map,
paging with `Link`, 404s as OCI errors. Every count it reports is checked against what the
client asked.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest
from bench.registry_sim import SimulatorProcess, running_simulator
from bench.sim_content import DOCKER_MANIFEST_LIST, SimContent, SimHost

from cip.errors import RegistryError
from cip.oci import media
from cip.registry.connect import open_http_registry

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
CHILD = "sha256:" + "3" * 64
MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": media.OCI_MANIFEST}).encode()
D_DATA = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()


def content() -> SimContent:
    held = SimContent()
    held.add("prod/app", D1, ["v1", "latest"], size=500)
    held.add("prod/app", D2, ["v2"], media_type=media.OCI_INDEX, size=700)
    held.add("prod/app", CHILD, [], media_type=media.OCI_MANIFEST, size=300)
    held.add("prod/tool", D_DATA, ["v1"], media_type=media.OCI_MANIFEST, data=MANIFEST)
    for i in range(130):
        held.add(f"many/r{i:03d}", D1, ["v1"])
    return held


def test_google_tags_list_gives_every_digest_with_its_tags_in_one_request() -> None:
    held = content()
    with running_simulator([SimHost("gcr", held, google=True)]) as sim:

        async def go() -> None:
            async with open_http_registry(sim.addresses["gcr"]) as client:
                listing = await client.list_tags("prod/app")
                assert sorted(listing.tags) == ["latest", "v1", "v2"]
                assert listing.manifests is not None
                assert {d: sorted(m.tags) for d, m in listing.manifests.items()} == {
                    D1: ["latest", "v1"],
                    D2: ["v2"],
                    CHILD: [],  # untagged manifests are listed too
                }
                assert listing.manifests[D2].media_type == media.OCI_INDEX

        asyncio.run(go())
        log = sim.log()
        assert log.by_repository(kind="tags") == {("gcr", "prod/app"): 1}
        assert log.total(kind="manifest") == 0


def test_google_listing_shape_matches_gcr() -> None:
    """Sizes and times are strings, `child` names sub-paths, as gcr.io answers."""
    body = json.loads(content().listing("prod/app", google=True) or b"")
    assert sorted(body) == ["child", "manifest", "name", "tags"]
    entry = body["manifest"][D1]
    assert sorted(entry) == [
        "imageSizeBytes", "layerId", "mediaType", "tag", "timeCreatedMs", "timeUploadedMs"
    ]  # fmt: skip
    assert entry["imageSizeBytes"] == "500" and entry["mediaType"] == DOCKER_MANIFEST_LIST
    prefix = json.loads(content().listing("prod", google=True) or b"")
    assert prefix["child"] == ["app", "tool"] and prefix["tags"] == []
    assert content().listing("prod", google=False) is None  # Distribution: no such repository


def test_plain_listing_and_heads_by_tag_and_digest() -> None:
    with running_simulator([SimHost("reg", content())]) as sim:

        async def go() -> None:
            async with open_http_registry(sim.addresses["reg"]) as client:
                listing = await client.list_tags("prod/app")
                assert listing.manifests is None
                by_tag = await client.head_manifest("prod/app", "v2")
                assert by_tag is not None
                assert (by_tag.digest, by_tag.media_type, by_tag.size) == (
                    D2, media.OCI_INDEX, 700
                )  # fmt: skip
                by_digest = await client.head_manifest("prod/app", CHILD)
                assert by_digest is not None and by_digest.size == 300
                assert await client.head_manifest("prod/app", "v9") is None
                assert await client.head_manifest("prod/app", "sha256:" + "9" * 64) is None
                assert await client.head_manifest("nothing/here", "v1") is None
                got = await client.get_manifest("prod/tool", "v1")
                assert (got.data, got.digest) == (MANIFEST, D_DATA)
                with pytest.raises(RegistryError) as missing:
                    await client.list_tags("nothing/here")
                assert missing.value.status == 404
                with pytest.raises(RegistryError) as refused:
                    await client.put_manifest("prod/app", "v3", MANIFEST, media.OCI_MANIFEST)
                assert refused.value.status == 405

        asyncio.run(go())
        log = sim.log()
        assert log.total(kind="manifest", method="HEAD") == 5
        assert log.total(kind="manifest", method="HEAD", status=404) == 3
        assert log.total(kind="manifest", method="GET") == 1
        assert log.by_repository(kind="tags") == {
            ("reg", "prod/app"): 1,
            ("reg", "nothing/here"): 1,
        }


def test_catalog_pages_follow_link() -> None:
    with running_simulator([SimHost("reg", content())]) as sim:

        async def names(page: int | None) -> list[str]:
            async with open_http_registry(sim.addresses["reg"], catalog_page_size=page) as client:
                return [name async for name in client.catalog()]

        for page, requests in ((50, 3), (1000, 1)):
            sim.reset()
            found = asyncio.run(names(page))
            assert found == sorted(content().repositories)
            assert sim.log().total(kind="catalog") == requests


def test_own_process_serves_a_spec_and_reports_counts(tmp_path: Path) -> None:
    shared = content()
    hosts = [SimHost("a", shared, google=True), SimHost("b", shared)]
    with SimulatorProcess(hosts, tmp_path) as sim:
        assert set(sim.addresses) == {"a", "b"}

        async def go() -> None:
            for name in ("a", "b"):
                async with open_http_registry(sim.addresses[name]) as client:
                    listing = await client.list_tags("prod/tool")
                    assert (listing.manifests is not None) == (name == "a")
                    assert (await client.get_manifest("prod/tool", D_DATA)).data == MANIFEST

        asyncio.run(go())
        log = sim.log()
        assert log.by_repository(kind="tags") == {("a", "prod/tool"): 1, ("b", "prod/tool"): 1}
        assert log.cpu_seconds > 0
    assert sim.process.returncode == 0
    # The spec wrote the shared content set once.
    spec = json.loads((tmp_path / "sim-spec.json").read_text())
    assert len(spec["contents"]) == 1
