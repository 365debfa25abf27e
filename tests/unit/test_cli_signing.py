"""Signing flags through the CLI: usage errors before any registry is read, and a signing
promotion between OCI layout folders that openssl verifies."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from cip.registry.layout import open_layout
from cip.trust.attached import signature_tag
from cip.trust.keys import load_private_key
from cip.trust.signer import KeySigner, sign_layer
from cip.trust.store import AttachedWriter, Incoming, read_attached, read_blob
from tests.cli import REPO, run_cip
from tests.trust.keyfiles import DATA, VECTOR_PASSWORD, openssl_keypair, openssl_verifies

DEMO = REPO / "examples" / "demo"


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    shutil.copytree(DEMO, tmp_path / "demo")
    return tmp_path / "demo" / "promoter-manifest.yaml"


def _usage_error(*args: str) -> str:
    done = run_cip("run", *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    return done.stderr


def test_signing_flags_that_cannot_work_are_usage_errors(
    demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = ("--manifest", str(demo))
    assert "--sign needs a signer" in _usage_error(*manifest, "--sign")
    assert "'maybe' is not a boolean" in _usage_error(*manifest, "--sign=maybe")
    assert "gcpkms keys are not supported" in _usage_error(
        *manifest, "--signing-key", "gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k"
    )
    assert "expected KEY=VALUE" in _usage_error(
        *manifest, "--signing-key", str(DATA / "pemsigstorekey.key"), "--signature-annotation", "x"
    )
    assert "is not a destination of any manifest" in _usage_error(
        *manifest, "--primary-registry", "oci:elsewhere"
    )
    monkeypatch.setenv("COSIGN_PASSWORD", "not-hello")
    stderr = _usage_error(*manifest, "--signing-key", str(DATA / "pemsigstorekey.key"))
    assert "wrong password in COSIGN_PASSWORD" in stderr
    assert "pemsigstorekey.key" in stderr
    assert not (demo.parent / "production").exists()


def test_sign_false_with_a_key_signs_nothing(demo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COSIGN_PASSWORD", VECTOR_PASSWORD)
    key = ("--signing-key", str(DATA / "pemsigstorekey.key"))
    done = run_cip("run", "--manifest", str(demo), "--confirm", *key, "--sign=false")
    assert done.returncode == 0, done.stderr
    assert "phase sign: signing is not configured" in done.stderr
    assert "Signatures:" not in done.stdout


def test_signing_between_layout_folders_verifies_with_openssl(demo: Path, tmp_path: Path) -> None:
    keys = openssl_keypair(tmp_path / "keys")
    args = ("run", "--manifest", str(demo), "--signing-key", str(keys.private))
    done = run_cip(
        *args, "--confirm", "--signature-annotation", "team=release",
        "--signing-identity", "registry.k8s.io",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    # hello, and web: an index with two children.
    assert "phase sign: 4 signatures made" in done.stderr
    assert "Signatures: sign 2, replicate-signature 0" in done.stdout
    web = json.loads((demo.parent / "production" / "web" / "index.json").read_text())
    tagged = [m for m in web["manifests"] if "annotations" in m]
    by_tag = {m["annotations"]["org.opencontainers.image.ref.name"]: m for m in tagged}
    signature_tags = [t for t in by_tag if t.endswith(".sig")]
    assert len(signature_tags) == 3
    blobs = demo.parent / "production" / "web" / "blobs" / "sha256"
    for tag in signature_tags:
        manifest = json.loads((blobs / by_tag[tag]["digest"][7:]).read_bytes())
        [layer] = manifest["layers"]
        payload = (blobs / layer["digest"][7:]).read_bytes()
        signed = json.loads(payload)["critical"]["image"]["docker-manifest-digest"]
        assert tag == signed.replace(":", "-") + ".sig"
        assert b'"optional":{"team":"release"}' in payload
        assert b'"docker-reference":"registry.k8s.io/web"' in payload
        signature = layer["annotations"]["dev.cosignproject.cosign/signature"]
        assert openssl_verifies(keys.public, payload, signature, tmp_path / tag)
    again = run_cip(*args, "--output=json")
    assert again.returncode == 0
    assert json.loads(again.stdout)["signatures"] == {"sign": 0, "replicate-signature": 0}


def test_staging_signatures_are_merged_first_unless_copy_attached_is_false(
    demo: Path, tmp_path: Path
) -> None:
    keys, theirs = openssl_keypair(tmp_path / "ours"), openssl_keypair(tmp_path / "theirs")
    hello = "sha256:f276d35308f97ab98f1aca11033dba59932bec2edacece81a3691fcbcbf695c5"

    async def sign_in_staging() -> None:
        staging = open_layout(demo.parent / "staging")
        layer = sign_layer(KeySigner(load_private_key(str(theirs.private))), b"staging's")
        await AttachedWriter().merge(
            staging, "hello", signature_tag(hello), [Incoming(layer.descriptor, layer.payload)]
        )

    asyncio.run(sign_in_staging())
    args = ("run", "--manifest", str(demo), "--confirm", "--signing-key", str(keys.private))
    copied = demo.parent / "production"
    done = run_cip(*args, "--image", "hello")
    assert done.returncode == 0, done.stderr
    assert _payloads(copied, hello)[0] == b"staging's"
    assert len(_payloads(copied, hello)) == 2
    shutil.rmtree(copied)
    done = run_cip(*args, "--image", "hello", "--copy-attached=false")
    assert done.returncode == 0, done.stderr
    [ours] = _payloads(copied, hello)
    assert json.loads(ours)["critical"]["image"]["docker-manifest-digest"] == hello


def _payloads(layouts: Path, digest: str) -> list[bytes]:
    async def read() -> list[bytes]:
        layout = open_layout(layouts)
        manifest = await read_attached(layout, "hello", signature_tag(digest))
        assert manifest is not None
        return [await read_blob(layout, "hello", d.digest) for d in manifest.parse().layers]

    return asyncio.run(read())


def test_sigcheck_usage_errors_answer_in_its_own_json_document(demo: Path) -> None:
    done = run_cip("sigcheck", "--manifest", str(demo), "--output=json")
    assert done.returncode == 2
    document = json.loads(done.stdout)
    assert document["command"] == "sigcheck"
    assert "needs --verify-key" in document["errors"][0]["message"]
    listing = run_cip("replicate-signatures", "--manifest", str(demo), "--output=json")
    assert listing.returncode == 0, listing.stderr
    assert json.loads(listing.stdout)["replication"] == {
        "tags_seen": 0, "merges": [], "failures": []
    }  # fmt: skip
