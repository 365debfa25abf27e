"""`--signature-format=both`: cosign v3's bundle referrers beside the legacy `.sig`, verified by
sigstore-python and, independently, by sigstore-js (`@sigstore/verify`) on node."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from cip.oci.media import OCI_EMPTY_JSON, referrers_tag
from cip.registry.connect import open_http_registry
from cip.trust.bundle_verify import BundleVerifier
from cip.trust.bundles import BUNDLE_MEDIA_TYPE, SIGN_PREDICATE_TYPE, bundles_of
from cip.trust.identity import IdentityPolicy
from cip.trust.instance import load_instance
from cip.trust.store import read_attached
from tests.e2e.conftest import run_cip, writes
from tests.e2e.signatures import all_digests
from tests.e2e.test_keyless import keyless_lab, keyless_layers
from tests.lab.registry_lab import LabRegistry
from tests.lab.sigstore_lab import IDENTITY, ISSUER, LAB_FOLDER, SigstoreLab, make_token

PROMOTION = "https://k8s.io/promo-tools/promotion/v1"


def referrer_manifests(lab: LabRegistry, repository: str, digest: str) -> list[dict[str, object]]:
    async def read() -> list[dict[str, object]]:
        async with open_http_registry(lab.host) as client:
            index = await read_attached(client, repository, referrers_tag(digest))
            assert index is not None, f"{lab.host}/{repository}: no {referrers_tag(digest)}"
            return [
                json.loads((await client.get_manifest(repository, entry.digest)).data)
                for entry in index.parse().children
            ]

    return asyncio.run(read())


def bundles(lab: LabRegistry, repository: str, digest: str) -> list[bytes]:
    async def read() -> list[bytes]:
        async with open_http_registry(lab.host) as client:
            return await bundles_of(client, repository, digest)

    return asyncio.run(read())


def sigstore_js(
    lab: SigstoreLab, bundle: bytes, scratch: Path, identity: str = IDENTITY
) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    assert node is not None, "node is needed to verify with sigstore-js"
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / "bundle.json").write_bytes(bundle)
    done = subprocess.run(
        [node, str(LAB_FOLDER / "verify.js"), str(lab.trusted_root), str(scratch / "bundle.json"),
         identity, ISSUER],
        capture_output=True, text=True, cwd=LAB_FOLDER, timeout=60,
    )  # fmt: skip
    return done


def sigstore_js_verifies(lab: SigstoreLab, bundle: bytes, scratch: Path) -> dict[str, object]:
    done = sigstore_js(lab, bundle, scratch)
    assert done.returncode == 0, done.stderr
    statement: dict[str, object] = json.loads(done.stdout)
    return statement


def test_both_formats_write_a_verifiable_bundle_referrer_and_a_sig_once_per_digest(
    registry_factory: Callable[..., LabRegistry], sigstore_lab: SigstoreLab, tmp_path: Path
) -> None:
    staging, mirrors, catalog, path = keyless_lab(registry_factory, tmp_path)
    signing = (
        "--identity-token", make_token(), "--sigstore-trust-config", str(sigstore_lab.trust_config),
        "--signature-format=both",
    )  # fmt: skip
    before = sigstore_lab.stats()
    done = run_cip("run", "--manifest", str(path), "--confirm", *signing)
    assert done.returncode == 0, done.stdout + done.stderr
    digests = all_digests(catalog.values())
    after = sigstore_lab.stats()
    # A .sig and a bundle per digest; an .att layer and a bundle per listed digest's promotion.
    assert after["entries"] - before["entries"] == 2 * len(digests) + 2 * len(catalog)

    trusted_root = load_instance(str(sigstore_lab.trust_config)).config.trusted_root
    python_verifier = BundleVerifier(trusted_root, IdentityPolicy(identity=IDENTITY, issuer=ISSUER))
    for mirror in mirrors:
        for name, image in catalog.items():
            for digest in all_digests([image]):
                repository = f"prod/{name}"
                layers = keyless_layers(mirror, repository, digest)
                assert layers is not None and len(layers) == 1
                manifests = referrer_manifests(mirror, repository, digest)
                manifest = manifests[0]  # the signature's, written first
                assert len(manifests) == (2 if digest == image.digest else 1)
                assert manifest["artifactType"] == BUNDLE_MEDIA_TYPE
                assert manifest["config"] == {  # type: ignore[comparison-overlap]
                    "mediaType": OCI_EMPTY_JSON,
                    "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
                    "size": 2,
                }
                subject = manifest["subject"]
                assert isinstance(subject, dict) and subject["digest"] == digest
                annotations = manifest["annotations"]
                assert isinstance(annotations, dict)
                assert annotations["dev.sigstore.bundle.content"] == "dsse-envelope"
                assert annotations["dev.sigstore.bundle.predicateType"] == SIGN_PREDICATE_TYPE
                bundle, *promotion = bundles(mirror, repository, digest)
                if promotion:
                    assert_promotion_bundle(
                        sigstore_lab, python_verifier, promotion[0], manifests[1], digest,
                        [f"{m.host}/{repository}@{digest}" for m in mirrors],
                        tmp_path / f"p{digest[7:19]}",
                    )  # fmt: skip
                assert python_verifier.problem(bundle, digest) is None
                assert python_verifier.problem(bundle, "sha256:" + "0" * 64) is not None
                statement = sigstore_js_verifies(sigstore_lab, bundle, tmp_path / digest[7:19])
                assert statement["predicateType"] == SIGN_PREDICATE_TYPE
                assert statement["subject"][0]["digest"] == {"sha256": digest[7:]}  # type: ignore[index]

    someone = BundleVerifier(trusted_root, IdentityPolicy(identity="https://x.test", issuer=ISSUER))
    bundle = bundles(mirrors[0], "prod/app", catalog["app"].digest)[0]
    assert "does not verify" in (someone.problem(bundle, catalog["app"].digest) or "")
    refused = sigstore_js(sigstore_lab, bundle, tmp_path / "someone", identity="https://x.test")
    assert refused.returncode == 1 and "certificate identity error" in refused.stderr

    marks = {lab.host: lab.mark() for lab in (staging, *mirrors)}
    again = run_cip("run", "--manifest", str(path), "--confirm", *signing)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "phase sign: 0 signatures made, 0 replicated" in again.stderr
    assert sigstore_lab.stats()["entries"] == after["entries"]
    assert sigstore_lab.stats()["certificates"] == after["certificates"]
    for lab in (staging, *mirrors):
        assert writes(lab, marks[lab.host]) == []


def assert_promotion_bundle(
    lab: SigstoreLab,
    verifier: BundleVerifier,
    bundle: bytes,
    manifest: dict[str, object],
    digest: str,
    refs: list[str],
    scratch: Path,
) -> None:
    """A promotion attestation bundle: its referrer annotated with the predicate type, the
    bundle verified by sigstore-python and by sigstore-js, its statement naming every mirror."""
    annotations = manifest["annotations"]
    assert isinstance(annotations, dict)
    assert annotations["dev.sigstore.bundle.predicateType"] == PROMOTION
    statement = json.loads(verifier.verified_statement(bundle))
    assert statement == sigstore_js_verifies(lab, bundle, scratch)
    assert statement["predicateType"] == PROMOTION
    assert [s["name"] for s in statement["subject"]] == refs
    assert statement["predicate"]["dstRefs"] == refs and statement["predicate"]["digest"] == digest
