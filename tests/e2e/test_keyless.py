"""`cip run` signing keylessly (a local Fulcio and Rekor), staging → two mirrors with an index,
and `cip sigcheck` verifying keyless signatures offline with an identity policy."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from cip.registry.connect import open_http_registry
from cip.trust.attached import CERTIFICATE_ANNOTATION, SIGNATURE_ANNOTATION, signature_tag
from cip.trust.dsse import parse_envelope
from cip.trust.identity import IdentityPolicy
from cip.trust.instance import load_instance
from cip.trust.keyless_verify import LegacyKeylessVerifier
from cip.trust.simplesigning import parse_payload
from cip.trust.store import read_attached, read_blob
from tests.e2e.conftest import push_images, run_cip, writes
from tests.e2e.signatures import all_digests
from tests.e2e.staging_fixtures import pae
from tests.e2e.test_attest import att_layers
from tests.e2e.test_dry_run import manifest
from tests.e2e.test_promote import dmap
from tests.lab.images import Image, oci_image, oci_index
from tests.lab.registry_lab import LabRegistry
from tests.lab.sigstore_lab import IDENTITY, ISSUER, SigstoreLab, make_token

Layer = tuple[bytes, dict[str, str]]
POLICY = ("--certificate-identity", IDENTITY, "--certificate-oidc-issuer", ISSUER)


def keyless_layers(lab: LabRegistry, repository: str, digest: str) -> list[Layer] | None:
    async def read() -> list[Layer] | None:
        async with open_http_registry(lab.host) as client:
            found = await read_attached(client, repository, signature_tag(digest))
            if found is None:
                return None
            return [
                (await read_blob(client, repository, layer.digest), dict(layer.annotations))
                for layer in found.parse().layers
            ]

    return asyncio.run(read())


def openssl_verifies_with_certificate(
    data: bytes, annotations: dict[str, str], scratch: Path
) -> bool:
    """The signature checked by openssl with the key of the layer's certificate."""
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / "leaf.pem").write_text(annotations[CERTIFICATE_ANNOTATION])
    key = subprocess.run(
        ["openssl", "x509", "-in", str(scratch / "leaf.pem"), "-pubkey", "-noout"],
        capture_output=True,
        check=True,
    ).stdout
    (scratch / "key.pem").write_bytes(key)
    (scratch / "payload").write_bytes(data)
    signature = subprocess.run(
        ["base64", "-d"], input=annotations[SIGNATURE_ANNOTATION].encode(), capture_output=True
    ).stdout
    (scratch / "sig.der").write_bytes(signature)
    done = subprocess.run(
        ["openssl", "dgst", "-sha256", "-verify", str(scratch / "key.pem"), "-signature",
         str(scratch / "sig.der"), str(scratch / "payload")],
        capture_output=True,
    )  # fmt: skip
    return done.returncode == 0


def keyless_lab(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> tuple[LabRegistry, list[LabRegistry], dict[str, Image], Path]:
    staging = registry_factory()
    mirrors = [registry_factory() for _ in range(2)]
    catalog = {"app": oci_image(401), "multi": oci_index(402)}
    push_images(staging, [(f"stage/{n}", image, "src") for n, image in catalog.items()])
    images = "".join(dmap(name, image, "1.0") for name, image in catalog.items())
    path = manifest(
        tmp_path / "m.yaml", f"{staging.host}/stage", [f"{m.host}/prod" for m in mirrors], images
    )
    return staging, mirrors, catalog, path


def test_keyless_run_signs_each_digest_once_everywhere_and_a_rerun_asks_nothing(
    registry_factory: Callable[..., LabRegistry], sigstore_lab: SigstoreLab, tmp_path: Path
) -> None:
    staging, mirrors, catalog, path = keyless_lab(registry_factory, tmp_path)
    token = tmp_path / "token"
    token.write_text(make_token())
    signing = (
        "--identity-token",
        str(token),
        "--sigstore-trust-config",
        str(sigstore_lab.trust_config),
    )
    before = sigstore_lab.stats()
    done = run_cip("run", "--manifest", str(path), "--confirm", *signing)
    assert done.returncode == 0, done.stdout + done.stderr
    digests = all_digests(catalog.values())  # the image, the index and its 2 children
    assert len(digests) == 4
    assert (
        f"phase sign: {len(digests)} signatures made, {len(digests)} replicated, 0 failed"
        in done.stderr
    )
    after = sigstore_lab.stats()
    # One Rekor entry per signed digest, and one per promotion attestation (of listed digests).
    assert after["entries"] - before["entries"] == len(digests) + len(catalog)
    assert after["certificates"] - before["certificates"] == 1

    verifier = LegacyKeylessVerifier(
        load_instance(str(sigstore_lab.trust_config)).material,
        IdentityPolicy(identity=IDENTITY, issuer=ISSUER),
    )
    for mirror in mirrors:
        for name, image in catalog.items():
            for digest in all_digests([image]):
                layers = keyless_layers(mirror, f"prod/{name}", digest)
                assert layers is not None and len(layers) == 1, (mirror.host, name, digest)
                data, annotations = layers[0]
                assert parse_payload(data).digest == digest
                assert verifier.problem(data, annotations) is None
                assert openssl_verifies_with_certificate(data, annotations, tmp_path / digest[7:19])
            assert_keyless_attestation(mirror, f"prod/{name}", image.digest, verifier, tmp_path)

    marks = {lab.host: lab.mark() for lab in (staging, *mirrors)}
    # The rerun takes its token from SIGSTORE_ID_TOKEN, as `--sign` asks.
    again = run_cip(
        "run", "--manifest", str(path), "--confirm", "--sign",
        "--sigstore-trust-config", str(sigstore_lab.trust_config),
        env={**os.environ, "SIGSTORE_ID_TOKEN": make_token()},
    )  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    assert "phase sign: 0 signatures made, 0 replicated" in again.stderr
    assert "phase attest: 0 promotion attestations made, 0 replicated" in again.stderr
    assert sigstore_lab.stats()["entries"] == after["entries"]
    assert sigstore_lab.stats()["certificates"] == after["certificates"]
    for lab in (staging, *mirrors):
        assert writes(lab, marks[lab.host]) == []

    checked = run_cip(
        "sigcheck", "--manifest", str(path), "--sigstore-trust-config",
        str(sigstore_lab.trust_config), *POLICY, "--output=json",
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert json.loads(checked.stdout)["signature_check"]["checked"] == 2 * len(digests)
    someone = run_cip(
        "sigcheck", "--manifest", str(path), "--sigstore-trust-config",
        str(sigstore_lab.trust_config), "--certificate-identity", "https://cip.test/other",
        "--certificate-oidc-issuer", ISSUER,
    )  # fmt: skip
    assert someone.returncode == 1, someone.stdout + someone.stderr
    assert f"certificate is for {IDENTITY}, not https://cip.test/other" in someone.stdout


def assert_keyless_attestation(
    lab: LabRegistry, repository: str, digest: str, verifier: LegacyKeylessVerifier, scratch: Path
) -> None:
    """The one promotion attestation of a digest: a keyless `.att` layer whose envelope cip's
    verifier accepts, and whose signature openssl verifies over the DSSE encoding with the key
    of the layer's certificate."""
    (layer,) = [
        (data, notes) for data, notes in att_layers(lab, repository, digest)
        if notes.get("predicateType") == "https://k8s.io/promo-tools/promotion/v1"
    ]  # fmt: skip
    data, annotations = layer
    assert annotations[SIGNATURE_ANNOTATION] == ""
    assert {
        CERTIFICATE_ANNOTATION,
        "dev.sigstore.cosign/chain",
        "dev.sigstore.cosign/bundle",
    } <= set(annotations)
    assert verifier.envelope_problem(parse_envelope(data), annotations) is None
    document = json.loads(data)
    payload = base64.b64decode(document["payload"])
    assert json.loads(payload)["subject"][0]["digest"] == {"sha256": digest[7:]}
    (signature,) = document["signatures"]
    signed = {**annotations, SIGNATURE_ANNOTATION: signature["sig"]}
    assert openssl_verifies_with_certificate(
        pae(document["payloadType"], payload), signed, scratch / f"att-{digest[7:19]}"
    )


def test_an_expired_token_fails_the_images_with_a_message_and_keeps_the_copy(
    registry_factory: Callable[..., LabRegistry], sigstore_lab: SigstoreLab, tmp_path: Path
) -> None:
    staging = registry_factory()
    mirror = registry_factory()
    app = oci_image(411)
    push_images(staging, [("stage/app", app, "src")])
    path = manifest(
        tmp_path / "m.yaml",
        f"{staging.host}/stage",
        [f"{mirror.host}/prod"],
        dmap("app", app, "1.0"),
    )
    before = sigstore_lab.stats()["certificates"]
    done = run_cip(
        "run", "--manifest", str(path), "--confirm", "--identity-token", make_token(lifetime=-120),
        "--sigstore-trust-config", str(sigstore_lab.trust_config),
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "identity token from --identity-token expired at" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert sigstore_lab.stats()["certificates"] == before
    assert keyless_layers(mirror, "prod/app", app.digest) is None
    # The plan still wants the signature: the next run with a fresh token makes it.
    planned = run_cip(
        "run", "--manifest", str(path), "--identity-token", make_token(),
        "--sigstore-trust-config", str(sigstore_lab.trust_config),
    )  # fmt: skip
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "Signatures: sign 1, replicate-signature 0 (planned)" in planned.stdout
