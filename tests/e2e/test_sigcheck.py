"""`cip sigcheck` and `cip replicate-signatures` against real registries."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

from cip.oci.media import Descriptor, compute_digest
from cip.registry.connect import open_http_registry
from cip.trust.attached import attached_tag
from cip.trust.store import AttachedWriter, Incoming
from tests.e2e.conftest import push_images, run_cip, writes
from tests.e2e.signatures import (
    all_digests,
    assert_signed_once_everywhere,
    delete_signature,
    signature_layers,
    signing_lab,
    verified_by,
)
from tests.e2e.test_dry_run import manifest
from tests.e2e.test_promote import dmap, skopeo_raw
from tests.lab.images import artifact, oci_image, referrers_index
from tests.lab.registry_lab import LabRegistry


def test_sigcheck_names_a_deleted_mirror_signature_and_confirm_repairs_it(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    _, mirrors, catalog, path, keys = signing_lab(registry_factory, tmp_path)
    signing = ("--signing-key", str(keys.private))
    done = run_cip("run", "--manifest", str(path), "--confirm", *signing)
    assert done.returncode == 0, done.stdout + done.stderr
    check = ("sigcheck", "--manifest", str(path), "--verify-key", str(keys.public))
    clean = run_cip(*check)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "24 digests checked" in clean.stdout  # 8 digests on 3 destinations

    child = catalog["multi"].children[1].digest
    delete_signature(mirrors[1], "prod/multi", child)
    found = run_cip(*check)
    assert found.returncode == 1, found.stdout + found.stderr
    assert f"missing    {mirrors[1].host}/prod/multi@{child}" in found.stdout
    assert f"child of multi@{catalog['multi'].digest}" in found.stdout
    as_json = json.loads(run_cip(*check, "--output=json").stdout)
    assert as_json["ok"] is False
    [finding] = as_json["signature_check"]["findings"]
    assert (finding["registry"], finding["digest"], finding["problem"]) == (
        f"{mirrors[1].host}/prod", child, "missing"
    )  # fmt: skip

    mark = mirrors[1].mark()
    repaired = run_cip(*check, "--confirm")  # no signer: merged from another destination
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert f"repaired, merged from {mirrors[0].host}/prod" in repaired.stdout
    assert any("sha256-" in w for w in writes(mirrors[1], mark))
    after = run_cip(*check)
    assert after.returncode == 0, after.stdout + after.stderr
    rerun = run_cip("run", "--manifest", str(path), "--confirm", *signing)
    assert rerun.returncode == 0
    assert_signed_once_everywhere(mirrors, catalog, keys, tmp_path / "v")


def test_sigcheck_signs_when_no_destination_has_a_valid_signature(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    _, mirrors, catalog, path, keys = signing_lab(registry_factory, tmp_path)
    assert run_cip("run", "--manifest", str(path), "--confirm").returncode == 0  # unsigned
    check = ("sigcheck", "--manifest", str(path), "--verify-key", str(keys.public))
    found = run_cip(*check)
    assert found.returncode == 1
    assert found.stdout.count("  missing ") == 24
    not_repaired = run_cip(*check, "--confirm")
    assert not_repaired.returncode == 1
    assert "not repaired, no valid signature elsewhere and no signer" in not_repaired.stdout
    fixed = run_cip(*check, "--confirm", "--signing-key", str(keys.private))
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert_signed_once_everywhere(mirrors, catalog, keys, tmp_path / "v")


def test_replicate_signatures_fills_a_mirror_and_then_writes_nothing(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    _, mirrors, catalog, path, keys = signing_lab(registry_factory, tmp_path)
    done = run_cip("run", "--manifest", str(path), "--confirm", "--signing-key", str(keys.private))
    assert done.returncode == 0, done.stdout + done.stderr
    emptied = mirrors[2]
    for name, image in catalog.items():
        for digest in all_digests([image]):
            delete_signature(emptied, f"prod/{name}", digest)
    mark = emptied.mark()
    dry = run_cip("replicate-signatures", "--manifest", str(path))
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "8 to merge (dry run: nothing written)" in dry.stdout
    assert writes(emptied, mark) == []
    requests = emptied.requests_since(mark)
    assert [e for e in requests if e.method == "HEAD"] == []  # listings and GETs only

    filled = run_cip("replicate-signatures", "--manifest", str(path), "--confirm")
    assert filled.returncode == 0, filled.stdout + filled.stderr
    assert_signed_once_everywhere(mirrors, catalog, keys, tmp_path / "v")
    marks = {m.host: m.mark() for m in mirrors}
    again = run_cip("replicate-signatures", "--manifest", str(path), "--confirm")
    assert again.returncode == 0
    assert ", 0 merged" in again.stdout
    for mirror in mirrors:
        assert writes(mirror, marks[mirror.host]) == []
    layers = signature_layers(emptied, "prod/app", catalog["app"].digest)
    assert layers is not None
    assert verified_by(keys.public, layers, catalog["app"].digest, tmp_path / "x")


def test_replicate_signatures_merges_attestations_and_referrers_indexes(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging, primary, mirror = registry_factory(), registry_factory(), registry_factory()
    image = oci_image(320)
    sbom = artifact(321, "application/spdx+json", subject=image)
    push_images(staging, [("app", image, "1")])
    push_images(primary, [("app", image, "1"), ("app", sbom, None)])
    push_images(primary, [("app", referrers_index([sbom]), attached_tag(image.digest, None))])
    push_images(mirror, [("app", image, "1")])
    envelope = b'{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}'
    attestation = Descriptor(
        "application/vnd.dsse.envelope.v1+json", compute_digest(envelope), len(envelope),
        annotations={"predicateType": "https://slsa.dev/provenance/v1"},
    )  # fmt: skip
    write_attached(primary, "app", attached_tag(image.digest, "att"), attestation, envelope)
    path = manifest(tmp_path / "m.yaml", staging.host, [primary.host, mirror.host],
                    dmap("app", image, "1"))  # fmt: skip

    filled = run_cip("replicate-signatures", "--manifest", str(path), "--confirm", "--output=json")
    assert filled.returncode == 0, filled.stdout + filled.stderr
    merged = {m["tag"]: m["added"] for m in json.loads(filled.stdout)["replication"]["merges"]}
    assert merged == {attached_tag(image.digest, "att"): 1, attached_tag(image.digest, None): 1}
    assert skopeo_raw(f"{mirror.host}/app@{sbom.digest}") == sbom.manifest  # referrer copied
    index = json.loads(skopeo_raw(f"{mirror.host}/app:{attached_tag(image.digest, None)}"))
    assert [d["digest"] for d in index["manifests"]] == [sbom.digest]
    att = json.loads(skopeo_raw(f"{mirror.host}/app:{attached_tag(image.digest, 'att')}"))
    assert [layer["digest"] for layer in att["layers"]] == [attestation.digest]
    mark = mirror.mark()
    again = run_cip("replicate-signatures", "--manifest", str(path), "--confirm")
    assert again.returncode == 0
    assert writes(mirror, mark) == []


def write_attached(
    lab: LabRegistry, repository: str, tag: str, layer: Descriptor, data: bytes
) -> None:
    async def write() -> None:
        async with open_http_registry(lab.host) as client:
            await AttachedWriter().merge(client, repository, tag, [Incoming(layer, data)])

    asyncio.run(write())
