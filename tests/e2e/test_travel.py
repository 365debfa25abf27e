"""Attached artifacts travel with their image: a signature, an SBOM and referrers staging holds
(tag scheme and referrers index) reach every destination, merged with cip's own signature."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from cip.registry.connect import open_http_registry
from tests.e2e.conftest import push_images, run_cip
from tests.e2e.signatures import signature_layers, verified_by
from tests.e2e.staging_fixtures import (
    attached,
    attached_tag,
    referrers_tag,
    signature_layer,
    simple_signing,
)
from tests.e2e.test_dry_run import manifest
from tests.e2e.test_keyless_bundles import bundles, referrer_manifests
from tests.e2e.test_promote import dmap
from tests.e2e.test_staging_verification import attach
from tests.lab.images import (
    EMPTY_CONFIG,
    Image,
    artifact,
    oci_image,
    oci_index,
    referrers_index,
    seeded_blob,
)
from tests.lab.registry_lab import LabRegistry
from tests.lab.sigstore_lab import SigstoreLab, make_token
from tests.trust.keyfiles import openssl_keypair

SPDX = "text/spdx+json"
SBOM_ARTIFACT = "application/spdx+json"


def tag_blobs(lab: LabRegistry, repository: str, tag: str) -> list[bytes] | None:
    async def read() -> list[bytes] | None:
        async with open_http_registry(lab.host) as client:
            if await client.head_manifest(repository, tag) is None:
                return None
            body = json.loads((await client.get_manifest(repository, tag)).data)
            out = []
            for layer in body["layers"]:
                out.append(
                    b"".join([c async for c in client.stream_blob(repository, layer["digest"])])
                )
            return out

    return asyncio.run(read())


def staged(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path, mirrors: int = 2
) -> tuple[LabRegistry, list[LabRegistry], dict[str, Image], Image, bytes, Path]:
    """app with a staging .sig (another key), a .sbom and an SBOM referrer; an index whose
    child carries a staging .sig."""
    staging = registry_factory()
    targets = [registry_factory() for _ in range(mirrors)]
    catalog = {"app": oci_image(801), "multi": oci_index(802)}
    push_images(staging, [(f"stage/{n}", image, "src") for n, image in catalog.items()])
    theirs = openssl_keypair(tmp_path / "theirs", "theirs")
    app, child = catalog["app"], catalog["multi"].children[0]

    def their_sig(name: str, digest: str) -> tuple[str, Image]:
        layer = signature_layer(theirs.private, simple_signing(f"stage/{name}", digest),
                                tmp_path / digest[7:19])  # fmt: skip
        return attached_tag(digest, "sig"), attached([layer])

    sbom = json.dumps({"spdxVersion": "SPDX-2.3", "name": "app"}).encode()
    referrer = artifact(803, SBOM_ARTIFACT, subject=app)
    attach(staging, "stage/app", [
        their_sig("app", app.digest),
        (attached_tag(app.digest, "sbom"), attached([(SPDX, sbom, {})])),
        (referrer.digest, referrer),
        (referrers_tag(app.digest), referrers_index([referrer])),
    ])  # fmt: skip
    attach(staging, "stage/multi", [their_sig("multi", child.digest)])
    images = "".join(dmap(name, image, "1.0") for name, image in catalog.items())
    path = manifest(tmp_path / "m.yaml", f"{staging.host}/stage",
                    [f"{m.host}/prod" for m in targets], images)  # fmt: skip
    return staging, targets, catalog, referrer, sbom, path


def test_staging_signature_sbom_and_referrers_reach_every_mirror_merged_with_cips_signature(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    _, mirrors, catalog, referrer, sbom, path = staged(registry_factory, tmp_path, 3)
    keys = openssl_keypair(tmp_path / "keys")
    done = run_cip("run", "--manifest", str(path), "--confirm", "--signing-key", str(keys.private))
    assert done.returncode == 0, done.stdout + done.stderr
    app, child = catalog["app"], catalog["multi"].children[0]
    for mirror in mirrors:
        layers = signature_layers(mirror, "prod/app", app.digest) or []
        assert len(layers) == 2, mirror.host  # staging's first, then cip's
        assert verified_by(keys.public, layers, app.digest, tmp_path / "v") == [layers[1]]
        assert b"stage/app" in layers[0][0]
        child_layers = signature_layers(mirror, "prod/multi", child.digest) or []
        assert len(child_layers) == 2 and b"stage/multi" in child_layers[0][0]
        assert tag_blobs(mirror, "prod/app", attached_tag(app.digest, "sbom")) == [sbom]
        assert [m["artifactType"] for m in referrer_manifests(mirror, "prod/app", app.digest)] == [
            SBOM_ARTIFACT
        ]
        assert tag_blobs(mirror, "prod/app", referrer.digest) is not None
    assert "SBOMs of staging merged" in done.stderr


def test_without_a_signer_sboms_travel_the_rest_comes_with_the_signing_run_and_false_keeps_all(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging, mirrors, catalog, _, sbom, path = staged(registry_factory, tmp_path)
    app = catalog["app"]
    kept = run_cip("run", "--manifest", str(path), "--confirm", "--copy-attached=false")
    assert kept.returncode == 0, kept.stderr
    for mirror in mirrors:
        assert signature_layers(mirror, "prod/app", app.digest) is None
        assert tag_blobs(mirror, "prod/app", attached_tag(app.digest, "sbom")) is None
    fresh = registry_factory()
    images = "".join(dmap(name, image, "1.0") for name, image in catalog.items())
    moved = manifest(tmp_path / "fresh.yaml", f"{staging.host}/stage", [f"{fresh.host}/prod"],
                     images)  # fmt: skip
    done = run_cip("run", "--manifest", str(moved), "--confirm")
    assert done.returncode == 0, done.stderr
    assert tag_blobs(fresh, "prod/app", attached_tag(app.digest, "sbom")) == [sbom]
    # A staging .sig in production would pass for cip's to a later signing run: it waits for it.
    assert signature_layers(fresh, "prod/app", app.digest) is None
    keys = openssl_keypair(tmp_path / "keys")
    signed = run_cip(
        "run", "--manifest", str(moved), "--confirm", "--signing-key", str(keys.private)
    )
    assert signed.returncode == 0, signed.stderr
    layers = signature_layers(fresh, "prod/app", app.digest) or []
    assert len(layers) == 2 and b"stage/app" in layers[0][0]
    assert len(referrer_manifests(fresh, "prod/app", app.digest)) == 1


def test_bundle_format_puts_staging_referrers_in_cips_referrers_index_on_every_mirror(
    registry_factory: Callable[..., LabRegistry], sigstore_lab: SigstoreLab, tmp_path: Path
) -> None:
    _, mirrors, catalog, _, _, path = staged(registry_factory, tmp_path)
    app = catalog["app"]
    done = run_cip(
        "run", "--manifest", str(path), "--confirm", "--identity-token", make_token(),
        "--sigstore-trust-config", str(sigstore_lab.trust_config), "--signature-format=bundle",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    for mirror in mirrors:
        found = referrer_manifests(mirror, "prod/app", app.digest)
        kinds = [m["annotations"].get("dev.sigstore.bundle.predicateType") for m in found]  # type: ignore[union-attr]
        assert kinds == [None, "https://sigstore.dev/cosign/sign/v1",
                         "https://k8s.io/promo-tools/promotion/v1"]  # fmt: skip
        assert found[0]["artifactType"] == SBOM_ARTIFACT
        assert len(bundles(mirror, "prod/app", app.digest)) == 2
        # The legacy tags staging holds travel as they are, cip writes none of its own.
        layers = signature_layers(mirror, "prod/app", app.digest) or []
        assert len(layers) == 1 and b"stage/app" in layers[0][0]
    again = run_cip(
        "run", "--manifest", str(path), "--confirm", "--identity-token", make_token(),
        "--sigstore-trust-config", str(sigstore_lab.trust_config), "--signature-format=bundle",
    )  # fmt: skip
    assert "phase sign: 0 signatures made" in again.stderr


def test_a_large_sbom_referrer_is_streamed_to_every_mirror(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging = registry_factory()
    mirrors = [registry_factory() for _ in range(2)]
    app = oci_image(811)
    push_images(staging, [("stage/app", app, "src")])
    big = seeded_blob(812, 6 * 1024 * 1024, SPDX)  # above what is read into memory (4 MiB)
    referrer = Image(
        json.dumps({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": SBOM_ARTIFACT,
            "config": EMPTY_CONFIG.descriptor(),
            "layers": [big.descriptor()],
            "subject": {"mediaType": app.media_type, "digest": app.digest, "size": app.size},
        }).encode(),
        "application/vnd.oci.image.manifest.v1+json",
        (EMPTY_CONFIG, big),
    )  # fmt: skip
    attach(staging, "stage/app", [(referrer.digest, referrer),
                                  (referrers_tag(app.digest), referrers_index([referrer]))])  # fmt: skip
    path = manifest(tmp_path / "m.yaml", f"{staging.host}/stage",
                    [f"{m.host}/prod" for m in mirrors], dmap("app", app, "1.0"))  # fmt: skip
    keys = openssl_keypair(tmp_path / "keys")
    done = run_cip("run", "--manifest", str(path), "--confirm", "--signing-key", str(keys.private))
    assert done.returncode == 0, done.stdout + done.stderr
    for mirror in mirrors:
        (found,) = referrer_manifests(mirror, "prod/app", app.digest)
        assert found["layers"] == [big.descriptor()]  # type: ignore[comparison-overlap]
        assert blob_digest(mirror, "prod/app", big.digest) == big.digest


def blob_digest(lab: LabRegistry, repository: str, digest: str) -> str:
    async def read() -> str:
        async with open_http_registry(lab.host) as client:
            hasher = hashlib.sha256()
            async for chunk in client.stream_blob(repository, digest):
                hasher.update(chunk)
            return f"sha256:{hasher.hexdigest()}"

    return asyncio.run(read())
