"""Staging verified against a keyless identity policy (a local Fulcio and Rekor): signature and
provenance bundles made by sigstore-python, and legacy keyless `.sig` layers cip wrote when it
promoted into staging."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from sigstore.dsse import Statement
from sigstore.models import ClientTrustConfig
from sigstore.oidc import IdentityToken
from sigstore.sign import SigningContext

from tests.e2e.conftest import push_images, run_cip
from tests.e2e.staging_fixtures import SLSA_V1, bundle_referrer, referrers_tag, slsa_statement
from tests.e2e.test_dry_run import manifest
from tests.e2e.test_promote import dmap
from tests.e2e.test_staging_verification import attach, present, verdicts
from tests.lab.images import Image, oci_image, referrers_index
from tests.lab.registry_lab import LabRegistry
from tests.lab.sigstore_lab import IDENTITY, ISSUER, SigstoreLab, make_token

SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"


def sigstore_bundle(lab: SigstoreLab, statement: bytes, subject: str = IDENTITY) -> bytes:
    """A DSSE bundle made by sigstore-python against the lab's Fulcio and Rekor."""
    config = ClientTrustConfig.from_json(lab.trust_config.read_text())
    context = SigningContext.from_trust_config(config)
    with context.signer(IdentityToken(make_token(subject))) as signer:
        bundle = signer.sign_dsse(Statement(statement))
    return bundle.to_json().encode()


def cosign_sign_statement(digest: str) -> bytes:
    return json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "stage", "digest": {"sha256": digest.removeprefix("sha256:")}}],
            "predicateType": SIGN_PREDICATE,
            "predicate": {},
        }
    ).encode()


def attach_bundles(
    staging: LabRegistry, repository: str, image: Image, bundles: list[tuple[bytes, str]]
) -> None:
    referrers = [bundle_referrer(data, image, kind) for data, kind in bundles]
    items = [(r.digest, r) for r in referrers]
    items.append((referrers_tag(image.digest), referrers_index(referrers)))
    attach(staging, repository, items)


def test_keyless_bundles_verified_against_the_identity_policy(
    registry_factory: Callable[..., LabRegistry],
    sigstore_lab: SigstoreLab,
    other_sigstore_lab: SigstoreLab,
    tmp_path: Path,
) -> None:
    staging, mirror = registry_factory(), registry_factory()
    images = {n: oci_image(700 + i) for i, n in enumerate(["good", "someone", "elsewhere", "prov"])}
    push_images(staging, [(f"stage/{n}", image, "src") for n, image in images.items()])

    def signed(
        name: str, lab: SigstoreLab = sigstore_lab, who: str = IDENTITY
    ) -> tuple[bytes, str]:
        return sigstore_bundle(lab, cosign_sign_statement(images[name].digest), who), SIGN_PREDICATE

    def provenance(name: str, digest: str | None = None) -> tuple[bytes, str]:
        statement = slsa_statement(digest or images[name].digest)
        return sigstore_bundle(sigstore_lab, statement), SLSA_V1

    attach_bundles(staging, "stage/good", images["good"], [signed("good"), provenance("good")])
    attach_bundles(staging, "stage/someone", images["someone"],
                   [signed("someone", who="https://cip.test/intruder")])  # fmt: skip
    attach_bundles(staging, "stage/elsewhere", images["elsewhere"],
                   [signed("elsewhere", lab=other_sigstore_lab)])  # fmt: skip
    attach_bundles(staging, "stage/prov", images["prov"],
                   [signed("prov"), provenance("prov", images["good"].digest)])  # fmt: skip
    path = manifest(
        tmp_path / "m.yaml", f"{staging.host}/stage", [f"{mirror.host}/prod"],
        "".join(dmap(n, image, "1.0") for n, image in images.items()),
    )  # fmt: skip
    policy = ("--certificate-identity", IDENTITY, "--certificate-oidc-issuer", ISSUER,
              "--sigstore-trust-config", str(sigstore_lab.trust_config), "--require-provenance")  # fmt: skip
    done = run_cip("run", "--manifest", str(path), *policy, "--confirm", "--output=json")
    assert done.returncode == 1, done.stderr
    found = verdicts(json.loads(done.stdout))
    assert found["good"] == ("copy", None)
    assert found["someone"][0] == "signature-invalid"
    assert "https://cip.test/intruder" in (found["someone"][1] or "")
    assert found["elsewhere"][0] == "signature-invalid"
    assert found["prov"][0] == "provenance-invalid"
    assert f"the provenance is for {images['good'].digest}" in (found["prov"][1] or "")
    for name, image in images.items():
        assert present(mirror, f"prod/{name}", image.digest) is (name == "good"), name


def test_legacy_keyless_signatures_cip_wrote_into_staging_are_verified_on_the_next_promotion(
    registry_factory: Callable[..., LabRegistry], sigstore_lab: SigstoreLab, tmp_path: Path
) -> None:
    build, staging, mirror = registry_factory(), registry_factory(), registry_factory()
    app = oci_image(710)
    push_images(build, [("app", app, "1.0")])
    into_staging = manifest(
        tmp_path / "a.yaml", build.host, [staging.host], dmap("app", app, "1.0")
    )
    trust = ("--sigstore-trust-config", str(sigstore_lab.trust_config))
    signed = run_cip("run", "--manifest", str(into_staging), "--confirm",
                     "--identity-token", make_token(), *trust)  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    to_prod = manifest(tmp_path / "b.yaml", staging.host, [mirror.host], dmap("app", app, "1.0"))

    def verdict(identity: str) -> tuple[str, str | None]:
        done = run_cip("run", "--manifest", str(to_prod), "--certificate-identity", identity,
                       "--certificate-oidc-issuer", ISSUER, *trust, "--output=json")  # fmt: skip
        return verdicts(json.loads(done.stdout))["app"]

    assert verdict(IDENTITY) == ("copy", None)
    action, reason = verdict("https://cip.test/someone-else")
    assert action == "signature-invalid"
    assert f"certificate is for {IDENTITY}, not https://cip.test/someone-else" in (reason or "")
