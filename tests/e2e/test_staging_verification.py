"""Phases provenance and validate: staging's signatures and SLSA provenance verified before
anything is copied, each bad image held back with its verdict, every good one promoted."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cip.registry.connect import open_http_registry
from tests.e2e.conftest import push_images, run_cip, writes
from tests.e2e.staging_fixtures import (
    SLSA_V02,
    SLSA_V1,
    attached,
    attached_tag,
    attestation_layer,
    bundle_referrer,
    envelope,
    key_bundle,
    referrers_index,
    referrers_tag,
    signature_layer,
    simple_signing,
    slsa_statement,
)
from tests.e2e.test_dry_run import manifest
from tests.e2e.test_promote import dmap
from tests.lab.images import Image, oci_image, push
from tests.lab.registry_lab import LabRegistry
from tests.trust.keyfiles import KeyPair, openssl_keypair

Attachment = tuple[str, Image]  # (tag, manifest)


def attach(lab: LabRegistry, repository: str, items: Sequence[Attachment]) -> None:
    async def go() -> None:
        async with open_http_registry(lab.host) as client:
            for tag, image in items:
                await push(client, repository, image, tag)

    asyncio.run(go())


@dataclass
class StagingLab:
    staging: LabRegistry
    mirror: LabRegistry
    images: dict[str, Image]
    manifest: Path
    keys: KeyPair


def staging_lab(registry_factory: Callable[..., LabRegistry], tmp_path: Path) -> StagingLab:
    staging, mirror = registry_factory(), registry_factory()
    keys, other = openssl_keypair(tmp_path / "keys"), openssl_keypair(tmp_path / "other", "other")
    names = ["good", "otherkey", "otherdigest", "tampered", "unsigned", "noprov", "wrongprov",
             "bundled", "v02"]  # fmt: skip
    images = {name: oci_image(600 + i) for i, name in enumerate(names)}
    push_images(staging, [(f"stage/{n}", image, "src") for n, image in images.items()])
    scratch = tmp_path / "scratch"

    def sig(
        name: str, *, key: KeyPair = keys, names: str | None = None, tamper: bool = False
    ) -> Attachment:
        digest = images[names or name].digest
        layer = signature_layer(key.private, simple_signing(f"stage/{name}", digest),
                                scratch / name, tamper=tamper)  # fmt: skip
        return attached_tag(images[name].digest, "sig"), attached([layer])

    def att(name: str, statement: bytes, predicate_type: str = SLSA_V1) -> Attachment:
        signed = envelope(statement, keys.private, scratch / f"{name}-att")
        layer = attestation_layer(signed, predicate_type)
        return attached_tag(images[name].digest, "att"), attached([layer])

    def provenance(name: str) -> Attachment:
        return att(name, slsa_statement(images[name].digest))

    bundle = key_bundle(slsa_statement(images["bundled"].digest), keys.private, scratch / "b")
    referrer = bundle_referrer(bundle, images["bundled"], SLSA_V1)
    fixtures: dict[str, list[Attachment]] = {
        "good": [sig("good"), provenance("good")],
        "otherkey": [sig("otherkey", key=other), provenance("otherkey")],
        "otherdigest": [sig("otherdigest", names="good"), provenance("otherdigest")],
        "tampered": [sig("tampered", tamper=True), provenance("tampered")],
        "unsigned": [provenance("unsigned")],
        "noprov": [sig("noprov")],
        "wrongprov": [sig("wrongprov"), att("wrongprov", slsa_statement(images["good"].digest))],
        "bundled": [
            sig("bundled"),
            (referrer.digest, referrer),
            (referrers_tag(images["bundled"].digest), referrers_index([referrer])),
        ],
        "v02": [
            sig("v02"),
            att("v02", slsa_statement(images["v02"].digest, version=SLSA_V02), SLSA_V02),
        ],
    }
    for name, items in fixtures.items():
        attach(staging, f"stage/{name}", items)
    path = manifest(
        tmp_path / "m.yaml", f"{staging.host}/stage", [f"{mirror.host}/prod"],
        "".join(dmap(name, image, "1.0") for name, image in images.items()),
    )  # fmt: skip
    return StagingLab(staging, mirror, images, path, keys)


def present(lab: LabRegistry, repository: str, digest: str) -> bool:
    async def head() -> bool:
        async with open_http_registry(lab.host) as client:
            return await client.head_manifest(repository, digest) is not None

    return asyncio.run(head())


def verdicts(document: dict[str, object]) -> dict[str, tuple[str, str | None]]:
    """image -> (its verdict at the one mirror, the reason)."""
    found: dict[str, tuple[str, str | None]] = {}
    for image in document["images"]:  # type: ignore[attr-defined]
        for action, entries in image["destinations"].items():
            for entry in entries:
                found[image["image"]] = (action, entry["error"])
    return found


BAD_SIGNATURES = {"otherkey", "otherdigest", "tampered"}


def test_bad_signatures_and_provenance_hold_back_their_images_in_a_dry_run_and_with_confirm(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    lab = staging_lab(registry_factory, tmp_path)
    policy = ("--verify-key", str(lab.keys.public))
    marks = {r.host: r.mark() for r in (lab.staging, lab.mirror)}
    dry = run_cip("run", "--manifest", str(lab.manifest), *policy, "--output=json")
    assert dry.returncode == 1, dry.stderr
    for registry in (lab.staging, lab.mirror):
        assert writes(registry, marks[registry.host]) == []
    # Bounded per source digest: the plan's HEAD, one tag listing per repository, and one GET
    # per listed attached tag and per layer or referrer in it (at most 7 here).
    per_repository = Counter(
        e.path.split("/")[3] for e in lab.staging.requests_since(marks[lab.staging.host])
    )
    assert set(per_repository) == set(lab.images) and max(per_repository.values()) <= 7
    found = verdicts(json.loads(dry.stdout))
    held = {name: verdict for name, (verdict, _) in found.items() if verdict != "copy"}
    assert held == {
        "otherkey": "signature-invalid",
        "otherdigest": "signature-invalid",
        "tampered": "signature-invalid",
        "wrongprov": "provenance-invalid",
    }
    assert "does not verify with the key" in (found["otherkey"][1] or "")
    assert f"payload signs {lab.images['good'].digest}" in (found["otherdigest"][1] or "")
    assert "does not verify with the key" in (found["tampered"][1] or "")
    assert f"the provenance is for {lab.images['good'].digest}" in (found["wrongprov"][1] or "")
    assert all((reason or "").endswith(": held back") for _, reason in held_reasons(found))
    assert "phase provenance: provenance of 9 source digests checked" in dry.stderr
    assert (
        "phase validate: signatures of 9 source digests checked (5 valid, 3 invalid, 1 missing)"
        in dry.stderr
    )

    text = run_cip("run", "--manifest", str(lab.manifest), *policy)
    assert text.returncode == 1
    assert f"signature-invalid otherkey@{lab.images['otherkey'].digest}" in text.stdout
    assert f"provenance-invalid wrongprov@{lab.images['wrongprov'].digest}" in text.stdout
    assert "signature-invalid 3, provenance-invalid 1" in text.stdout

    done = run_cip("run", "--manifest", str(lab.manifest), *policy, "--confirm")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "partially promoted" in done.stdout
    for name, image in lab.images.items():
        expected = name not in BAD_SIGNATURES and name != "wrongprov"
        assert present(lab.mirror, f"prod/{name}", image.digest) is expected, name
    # Promoted images are not judged again: the rerun reads staging only for the held-back ones.
    mark = lab.staging.mark()
    again = run_cip("run", "--manifest", str(lab.manifest), *policy)
    assert again.returncode == 1
    read = {e.path.split("/")[3] for e in lab.staging.requests_since(mark)}
    assert read == BAD_SIGNATURES | {"wrongprov"}


def held_reasons(found: dict[str, tuple[str, str | None]]) -> list[tuple[str, str | None]]:
    return [(name, reason) for name, (verdict, reason) in found.items() if verdict != "copy"]


def test_required_signature_and_provenance_and_the_builder_policy(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    lab = staging_lab(registry_factory, tmp_path)
    policy = ("--verify-key", str(lab.keys.public), "--require-signature=true",
              "--require-provenance", "--output=json")  # fmt: skip
    dry = run_cip("run", "--manifest", str(lab.manifest), *policy)
    assert dry.returncode == 1, dry.stderr
    found = verdicts(json.loads(dry.stdout))
    assert found["unsigned"] == ("signature-missing", "no signature in staging: held back")
    assert found["noprov"] == ("provenance-missing", "no provenance in staging: held back")
    assert {n for n, (v, _) in found.items() if v == "copy"} == {"good", "bundled", "v02"}

    strict = run_cip("run", "--manifest", str(lab.manifest), *policy,
                     "--provenance-builder-id", r"^https://builder\.test/",
                     "--provenance-source-uri", r"git\.test/org/other")  # fmt: skip
    found = verdicts(json.loads(strict.stdout))
    assert {n for n, (v, _) in found.items() if v == "copy"} == set()
    reason = found["good"][1] or ""
    assert found["good"][0] == "provenance-invalid"
    assert "none matching --provenance-source-uri git\\.test/org/other" in reason

    done = run_cip("run", "--manifest", str(lab.manifest), *policy, "--confirm",
                   "--provenance-builder-id", "builder.test/ci@")  # fmt: skip
    assert done.returncode == 1
    for name, image in lab.images.items():
        assert present(lab.mirror, f"prod/{name}", image.digest) is (
            name in {"good", "bundled", "v02"}
        ), name
