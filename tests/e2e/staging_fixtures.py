"""What a build system attaches to staging images, made by the tests without cip's trust code.

Payloads, statements and DSSE pre-authentication encodings are written here by hand from the
specs, and signed by the openssl command, so a test of cip's verification checks it against an
independent producer. The attached manifests are cosign's shapes (`.sig` and `.att` tags with one
layer per signature; a sigstore bundle referrer listed in the `sha256-<hex>` referrers tag).
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.lab.images import EMPTY_CONFIG, Blob, Image, bytes_blob, referrers_index

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE = "application/vnd.dsse.envelope.v1+json"
IN_TOTO = "application/vnd.in-toto+json"
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
SLSA_V1 = "https://slsa.dev/provenance/v1"
SLSA_V02 = "https://slsa.dev/provenance/v0.2"
BUILDER = "https://builder.test/ci@v1"
SOURCE = "git+https://git.test/org/app@refs/heads/main"


def openssl_sign(private: Path, data: bytes, scratch: Path) -> bytes:
    """A DER ECDSA P-256 SHA-256 signature by `openssl dgst -sign`."""
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / "data").write_bytes(data)
    subprocess.run(
        ["openssl", "dgst", "-sha256", "-sign", str(private), "-out", str(scratch / "sig"),
         str(scratch / "data")],
        check=True, capture_output=True,
    )  # fmt: skip
    return (scratch / "sig").read_bytes()


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE protocol.md: "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body."""
    kind = payload_type.encode()
    return (
        b"DSSEv1 "
        + str(len(kind)).encode()
        + b" "
        + kind
        + b" "
        + str(len(payload)).encode()
        + b" "
        + payload
    )


def simple_signing(reference: str, digest: str) -> bytes:
    body = {
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": None,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def slsa_statement(
    digest: str, *, version: str = SLSA_V1, builder: str = BUILDER, source: str = SOURCE
) -> bytes:
    predicate: dict[str, Any]
    if version == SLSA_V1:
        predicate = {
            "buildDefinition": {
                "buildType": "https://builder.test/type@v1",
                "externalParameters": {"source": source},
                "resolvedDependencies": [{"uri": source, "digest": {"gitCommit": "a" * 40}}],
            },
            "runDetails": {"builder": {"id": builder}},
        }
    else:
        predicate = {
            "builder": {"id": builder},
            "buildType": "https://builder.test/type@v1",
            "invocation": {"configSource": {"uri": source, "entryPoint": "build.yaml"}},
            "materials": [{"uri": source}],
        }
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "staging/app", "digest": {"sha256": digest.removeprefix("sha256:")}}],
        "predicateType": version,
        "predicate": predicate,
    }
    return json.dumps(statement).encode()


def envelope(statement: bytes, private: Path, scratch: Path) -> bytes:
    signature = openssl_sign(private, pae(IN_TOTO, statement), scratch)
    return json.dumps(
        {
            "payloadType": IN_TOTO,
            "payload": base64.b64encode(statement).decode(),
            "signatures": [{"keyid": "", "sig": base64.b64encode(signature).decode()}],
        }
    ).encode()


def signature_layer(
    private: Path, payload: bytes, scratch: Path, *, tamper: bool = False
) -> tuple[str, bytes, dict[str, str]]:
    signature = openssl_sign(private, payload, scratch)
    stored = payload.replace(b"stage/", b"evil/") if tamper else payload
    annotations = {"dev.cosignproject.cosign/signature": base64.b64encode(signature).decode()}
    return SIMPLE_SIGNING, stored, annotations


def attestation_layer(data: bytes, predicate_type: str) -> tuple[str, bytes, dict[str, str]]:
    return DSSE, data, {"predicateType": predicate_type, "dev.cosignproject.cosign/signature": ""}


def attached(layers: Sequence[tuple[str, bytes, Mapping[str, str]]]) -> Image:
    """A `.sig`/`.att` manifest as cosign writes it: config listing the layers as diff_ids."""
    blobs = [bytes_blob(data, media_type) for media_type, data, _ in layers]
    config = bytes_blob(
        json.dumps(
            {
                "architecture": "",
                "os": "",
                "rootfs": {"type": "layers", "diff_ids": [b.digest for b in blobs]},
                "config": {},
            }
        ).encode(),
        "application/vnd.oci.image.config.v1+json",
    )
    descriptors = []
    for blob, (_, _, notes) in zip(blobs, layers, strict=True):
        descriptors.append({**blob.descriptor(), "annotations": dict(notes)})
    body = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": descriptors,
    }
    return Image(json.dumps(body).encode(), OCI_MANIFEST, (config, *blobs))


def key_bundle(statement: bytes, private: Path, scratch: Path) -> bytes:
    """A sigstore bundle v0.3 signed with a key (publicKey material, no log entry)."""
    signature = openssl_sign(private, pae(IN_TOTO, statement), scratch)
    return json.dumps(
        {
            "mediaType": BUNDLE,
            "verificationMaterial": {"publicKey": {"hint": ""}, "tlogEntries": []},
            "dsseEnvelope": {
                "payload": base64.b64encode(statement).decode(),
                "payloadType": IN_TOTO,
                "signatures": [{"sig": base64.b64encode(signature).decode(), "keyid": ""}],
            },
        }
    ).encode()


def bundle_referrer(bundle: bytes, subject: Image, predicate_type: str) -> Image:
    """cosign v3's referrer manifest for a bundle (specs/BUNDLE_SPEC.md)."""
    layer: Blob = bytes_blob(bundle, BUNDLE)
    body = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": BUNDLE,
        "config": EMPTY_CONFIG.descriptor(),
        "layers": [layer.descriptor()],
        "subject": {
            "mediaType": subject.media_type,
            "digest": subject.digest,
            "size": subject.size,
        },
        "annotations": {
            "dev.sigstore.bundle.content": "dsse-envelope",
            "dev.sigstore.bundle.predicateType": predicate_type,
        },
    }
    return Image(json.dumps(body).encode(), OCI_MANIFEST, (EMPTY_CONFIG, layer))


def referrers_tag(digest: str) -> str:
    return digest.replace(":", "-")


def attached_tag(digest: str, suffix: str) -> str:
    return f"{referrers_tag(digest)}.{suffix}"


__all__ = ["referrers_index"]
