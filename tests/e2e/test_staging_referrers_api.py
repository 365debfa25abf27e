"""Referrers staging serves by their subject (the OCI 1.1 referrers API; here an `oci:` layout,
whose index lists them untagged) are verified and travel like those under the referrers tag,
though no tag listing shows them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

from cip.registry.layout import open_layout
from tests.e2e.conftest import run_cip
from tests.e2e.staging_fixtures import bundle_referrer, key_bundle, slsa_statement
from tests.e2e.test_dry_run import manifest
from tests.e2e.test_keyless_bundles import referrer_manifests
from tests.e2e.test_promote import dmap
from tests.e2e.test_staging_verification import present, verdicts
from tests.lab.images import artifact, oci_image, push
from tests.lab.registry_lab import LabRegistry
from tests.trust.keyfiles import openssl_keypair

SLSA_V1 = "https://slsa.dev/provenance/v1"
SBOM_ARTIFACT = "application/spdx+json"
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"


def test_untagged_referrers_are_verified_and_travel_to_every_mirror(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    mirrors = [registry_factory(), registry_factory()]
    keys, other = openssl_keypair(tmp_path / "keys"), openssl_keypair(tmp_path / "other", "other")
    good, bad = oci_image(901), oci_image(902)
    sbom = artifact(903, SBOM_ARTIFACT, subject=good)
    signed = key_bundle(slsa_statement(good.digest), keys.private, tmp_path / "good")
    forged = key_bundle(slsa_statement(bad.digest), other.private, tmp_path / "bad")
    provenance = bundle_referrer(signed, good, SLSA_V1)

    async def fill() -> None:
        layout = open_layout(tmp_path / "staging")
        await push(layout, "good", good, "src")
        await push(layout, "bad", bad, "src")
        for image in (sbom, provenance):  # by digest only: no tag names them
            await push(layout, "good", image)
        await push(layout, "bad", bundle_referrer(forged, bad, SLSA_V1))

    asyncio.run(fill())
    path = manifest(tmp_path / "m.yaml", f"oci:{tmp_path / 'staging'}",
                    [f"{m.host}/prod" for m in mirrors], dmap("good", good, "1.0") + dmap("bad", bad, "1.0"))  # fmt: skip
    policy = ("--verify-key", str(keys.public), "--require-provenance")
    dry = run_cip("run", "--manifest", str(path), *policy, "--output=json")
    assert dry.returncode == 1, dry.stderr
    found = verdicts(json.loads(dry.stdout))
    assert found["good"] == ("copy", None)
    assert found["bad"][0] == "provenance-invalid"
    assert "does not verify with the key" in (found["bad"][1] or "")

    done = run_cip("run", "--manifest", str(path), *policy, "--confirm",
                   "--signing-key", str(keys.private))  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    for mirror in mirrors:
        assert present(mirror, "prod/good", good.digest)
        assert not present(mirror, "prod/bad", bad.digest)
        kinds = sorted(str(m["artifactType"]) for m in referrer_manifests(mirror, "prod/good", good.digest))  # fmt: skip
        assert kinds == sorted([SBOM_ARTIFACT, BUNDLE])
