"""Phase attest with a key: one promotion attestation per promoted digest, in its `.att` tag on
every destination, checked field by field and verified by openssl over the DSSE encoding."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cip.registry.connect import open_http_registry
from tests.e2e.conftest import run_cip, writes
from tests.e2e.signatures import signing_lab
from tests.e2e.staging_fixtures import (
    attached,
    attached_tag,
    attestation_layer,
    envelope,
    pae,
    slsa_statement,
)
from tests.e2e.test_dry_run import manifest
from tests.e2e.test_promote import dmap
from tests.e2e.test_staging_verification import attach
from tests.lab.registry_lab import LabRegistry
from tests.trust.keyfiles import KeyPair, openssl_verifies

PROMOTION = "https://k8s.io/promo-tools/promotion/v1"
Layer = tuple[bytes, dict[str, str]]


def att_layers(lab: LabRegistry, repository: str, digest: str) -> list[Layer]:
    """The layers of `repository:sha256-<hex>.att` ([] when the tag is missing), each a DSSE
    envelope as cosign stores attestations."""

    async def read() -> list[Layer]:
        async with open_http_registry(lab.host) as client:
            tag = attached_tag(digest, "att")
            if await client.head_manifest(repository, tag) is None:
                return []
            manifest = json.loads((await client.get_manifest(repository, tag)).data)
            found = []
            for layer in manifest["layers"]:
                assert layer["mediaType"] == "application/vnd.dsse.envelope.v1+json"
                chunks = [c async for c in client.stream_blob(repository, layer["digest"])]
                found.append((b"".join(chunks), dict(layer.get("annotations") or {})))
            return found

    return asyncio.run(read())


def promotion_statements(
    lab: LabRegistry, repository: str, digest: str, keys: KeyPair, scratch: Path
) -> list[dict[str, Any]]:
    """The promotion attestations of a digest, each verified by openssl with the public key
    over the DSSE pre-authentication encoding built here from the envelope."""
    statements = []
    for index, (data, notes) in enumerate(att_layers(lab, repository, digest)):
        if notes.get("predicateType") != PROMOTION:
            continue
        document = json.loads(data)
        payload = base64.b64decode(document["payload"])
        assert document["payloadType"] == "application/vnd.in-toto+json"
        assert notes["dev.cosignproject.cosign/signature"] == ""
        (signature,) = document["signatures"]
        signed = pae(document["payloadType"], payload)
        assert openssl_verifies(keys.public, signed, signature["sig"], scratch / f"{index}")
        statements.append(json.loads(payload))
    return statements


def test_one_promotion_attestation_per_digest_everywhere_and_a_second_when_a_mirror_is_added(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging, mirrors, catalog, path, keys = signing_lab(registry_factory, tmp_path)
    app = catalog["app"]
    # Build provenance staging attached to app: it travels into every destination's `.att`.
    provenance = envelope(slsa_statement(app.digest), keys.private, tmp_path / "prov")
    attach(staging, "stage/app", [(attached_tag(app.digest, "att"),
                                   attached([attestation_layer(provenance, "https://slsa.dev/provenance/v1")]))])  # fmt: skip
    signing = ("--signing-key", str(keys.private))
    dry = run_cip("run", "--manifest", str(path), *signing)
    assert "Attestations: attest 3, replicate-attestation 6 (planned)" in dry.stdout
    done = run_cip("run", "--manifest", str(path), "--confirm", *signing, "--output=json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["attestations"] == {"attest": 3, "replicate-attestation": 6}
    assert "phase attest: 3 promotion attestations made, 6 replicated, 0 failed" in done.stderr
    hosts = [f"{m.host}/prod" for m in mirrors]
    for mirror in mirrors:
        for name, image in catalog.items():
            (statement,) = promotion_statements(mirror, f"prod/{name}", image.digest, keys,
                                                tmp_path / mirror.host / name)  # fmt: skip
            refs = [f"{h}/{name}@{image.digest}" for h in hosts]
            assert statement["_type"] == "https://in-toto.io/Statement/v1"
            assert statement["predicateType"] == PROMOTION
            assert statement["subject"] == [
                {"name": ref, "digest": {"sha256": image.digest[7:]}} for ref in refs
            ]
            predicate = statement["predicate"]
            assert list(predicate) == ["srcRef", "dstRef", "digest", "timestamp", "builderId",
                                       "dstRefs"]  # fmt: skip
            assert predicate["srcRef"] == f"{staging.host}/stage/{name}@{image.digest}"
            assert predicate["dstRef"] == refs[0] and predicate["dstRefs"] == refs
            assert predicate["digest"] == image.digest
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", predicate["timestamp"])
            assert predicate["builderId"].startswith("pkg:pypi/container-image-promoter@")
            for child in image.children:  # children are signed, not attested
                assert att_layers(mirror, f"prod/{name}", child.digest) == []
        layers = att_layers(mirror, "prod/app", app.digest)
        assert layers[0][0] == provenance  # staging's first, byte for byte

    marks = {lab.host: lab.mark() for lab in (staging, *mirrors)}
    again = run_cip("run", "--manifest", str(path), "--confirm", *signing)
    assert again.returncode == 0, again.stderr
    assert "phase attest: 0 promotion attestations made, 0 replicated" in again.stderr
    for lab in (staging, *mirrors):
        assert writes(lab, marks[lab.host]) == []

    added = registry_factory()
    images = "".join(dmap(name, image, "1.0") for name, image in catalog.items())
    grown = manifest(tmp_path / "grown.yaml", f"{staging.host}/stage",
                     [*hosts, f"{added.host}/prod"], images)  # fmt: skip
    done = run_cip("run", "--manifest", str(grown), "--confirm", *signing,
                   "--builder-id", "https://ci.test/promoter@v2")  # fmt: skip
    assert done.returncode == 0, done.stderr
    for mirror in (*mirrors, added):
        for name, image in catalog.items():
            first, second = promotion_statements(mirror, f"prod/{name}", image.digest, keys,
                                                 tmp_path / "grown" / mirror.host / name)  # fmt: skip
            assert len(first["subject"]) == 3 and len(second["subject"]) == 4
            assert second["predicate"]["dstRefs"][-1] == f"{added.host}/prod/{name}@{image.digest}"
            assert second["predicate"]["builderId"] == "https://ci.test/promoter@v2"


def test_a_run_that_copied_without_signing_is_attested_by_the_next_and_a_lost_att_is_restored(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    _, mirrors, catalog, path, keys = signing_lab(registry_factory, tmp_path)
    assert run_cip("run", "--manifest", str(path), "--confirm").returncode == 0
    app = catalog["app"]
    assert att_layers(mirrors[0], "prod/app", app.digest) == []
    signing = ("--signing-key", str(keys.private))
    assert run_cip("run", "--manifest", str(path), "--confirm", *signing).returncode == 0
    delete_att(mirrors[1], "prod/app", app.digest)
    plan = run_cip("run", "--manifest", str(path), *signing)
    assert "Attestations: attest 1, replicate-attestation 2 (planned)" in plan.stdout
    repaired = run_cip("run", "--manifest", str(path), "--confirm", *signing)
    assert repaired.returncode == 0, repaired.stderr
    assert "phase attest: 0 promotion attestations made, 1 replicated" in repaired.stderr
    for mirror in mirrors:
        statements = promotion_statements(
            mirror, "prod/app", app.digest, keys, tmp_path / mirror.host
        )
        assert len(statements) == 1


def delete_att(lab: LabRegistry, repository: str, digest: str) -> None:
    async def delete() -> None:
        async with open_http_registry(lab.host) as client:
            info = await client.head_manifest(repository, attached_tag(digest, "att"))
            assert info is not None
            await client.delete_manifest(repository, info.digest)

    asyncio.run(delete())
