"""The soak's own check can fail: it sees a tag on missing content and a tag on the wrong digest.

The soak's verdict after every kill is only as good as this reading, so it is tested on a
registry where content was taken away behind a tag (a blob deleted through the API) and where a
tag names another digest than the manifests say.
"""

from __future__ import annotations

import random
import urllib.request

from tests.e2e.conftest import push_images
from tests.lab.images import oci_image
from tests.lab.registry_lab import LabRegistry
from tests.soak.chaos import build_catalog, read_holdings, wrong_tags


def test_a_tag_on_missing_content_and_a_tag_on_another_digest_are_seen(
    lab_registry: LabRegistry,
) -> None:
    images = build_catalog(random.Random(7), 4)  # img000, img001, img002, multi003
    index = images["multi003"]
    push_images(
        lab_registry,
        [
            ("prod/img000", images["img000"], "1.0"),
            ("prod/img001", oci_image(99), "1.0"),  # not the digest the manifests name
            ("prod/multi003", index, "latest"),
        ],
    )
    memory: dict[str, set[tuple[str, str]]] = {}
    (held,) = read_holdings([lab_registry.host], memory)
    assert held.incomplete == []
    assert [p.split(" is ")[0] for p in wrong_tags(held, images)] == [
        f"{lab_registry.host}/prod/img001:1.0"
    ]

    layer = index.children[1].blobs[-1].digest  # a layer of the index's second platform
    request = urllib.request.Request(
        f"{lab_registry.url}/v2/prod/multi003/blobs/{layer}", method="DELETE"
    )
    with urllib.request.urlopen(request) as answer:
        assert answer.status == 202
    (fresh,) = read_holdings([lab_registry.host])
    assert fresh.incomplete == ["prod/multi003:latest"]
    # What an earlier check found complete is taken as still complete: nothing else deletes.
    (remembered,) = read_holdings([lab_registry.host], memory)
    assert remembered.incomplete == []
