"""The bytes cosign writes: simple-signing payloads, `.sig` manifests and configs, merges."""

from __future__ import annotations

import json

from cip.oci.media import Descriptor, compute_digest, parse_manifest
from cip.trust.attached import (
    SIGNATURE_ANNOTATION,
    SIMPLE_SIGNING_MEDIA_TYPE,
    attached_tag,
    build_manifest,
    is_attached_tag,
    merge_index_entries,
    merge_layers,
    parse_attached_tag,
    signed_digests,
)
from cip.trust.simplesigning import claims_problem, parse_payload, payload

DIGEST = "sha256:" + "ab" * 32


def test_payload_is_byte_for_byte_what_cosign_marshals() -> None:
    assert payload("registry.k8s.io/pause", DIGEST, None) == (
        b'{"critical":{"identity":{"docker-reference":"registry.k8s.io/pause"},'
        b'"image":{"docker-manifest-digest":"' + DIGEST.encode() + b'"},'
        b'"type":"cosign container image signature"},"optional":null}'
    )
    # Go sorts map keys and escapes <, > and & in strings.
    annotated = payload("r/x", DIGEST, {"z": "1", "a": "<b>&"})
    assert annotated.endswith(b'"optional":{"a":"\\u003cb\\u003e\\u0026","z":"1"}}')
    claims = parse_payload(annotated)
    assert claims.optional == {"a": "<b>&", "z": "1"}
    assert claims_problem(claims, DIGEST, {"a": "<b>&"}) is None
    assert "not" in (claims_problem(claims, "sha256:" + "cd" * 32) or "")
    assert "lacks annotation" in (claims_problem(claims, DIGEST, {"team": "x"}) or "")


def test_attached_tags_are_recognised_and_image_tags_are_not() -> None:
    assert attached_tag(DIGEST) == f"sha256-{'ab' * 32}.sig"
    assert attached_tag(DIGEST, None) == f"sha256-{'ab' * 32}"
    for tag in (attached_tag(DIGEST), attached_tag(DIGEST, "att"), attached_tag(DIGEST, "sbom"),
                attached_tag(DIGEST, None), "v1.sig"):  # fmt: skip
        assert is_attached_tag(tag), tag
    for tag in ("v1.0", "latest", "sha256-abc", "signature", "sha256-" + "ab" * 32 + ".tar"):
        assert not is_attached_tag(tag), tag
    assert parse_attached_tag(attached_tag(DIGEST, "att")) == (DIGEST, "att")
    assert signed_digests(["v1", attached_tag(DIGEST, "att"), attached_tag(DIGEST)]) == {DIGEST}


def _layer(data: bytes, signature: str) -> Descriptor:
    return Descriptor(
        SIMPLE_SIGNING_MEDIA_TYPE,
        compute_digest(data),
        len(data),
        annotations={SIGNATURE_ANNOTATION: signature},
    )


def test_signature_manifest_and_config_as_cosign_writes_them() -> None:
    one, two = _layer(b"p1", "c2lnMQ=="), _layer(b"p2", "c2lnMg==")
    built = build_manifest([one, two])
    config = json.loads(built.config)
    assert built.config.startswith(b'{"architecture":"","created":"0001-01-01T00:00:00Z",')
    assert config["rootfs"] == {"type": "layers", "diff_ids": [one.digest, two.digest]}
    assert len(config["history"]) == 2
    assert b" " not in built.manifest
    parsed = parse_manifest(built.manifest)
    assert parsed.media_type == "application/vnd.oci.image.manifest.v1+json"
    assert parsed.config is not None
    assert parsed.config.digest == compute_digest(built.config)
    assert [d.annotations[SIGNATURE_ANNOTATION] for d in parsed.layers] == ["c2lnMQ==", "c2lnMg=="]
    first = json.loads(built.manifest)["layers"][0]
    assert list(first) == ["mediaType", "size", "digest", "annotations"]


def test_merge_keeps_everything_there_and_adds_no_duplicate() -> None:
    theirs, ours = _layer(b"p", "dGhlaXJz"), _layer(b"p", "b3Vycw==")
    again = _layer(b"p", "b3VyczI=")  # the same payload signed again by our key
    merged, added = merge_layers([theirs], [theirs, ours])
    assert merged == [theirs, ours]
    assert added == [ours]
    mine = {ours.annotations[SIGNATURE_ANNOTATION], again.annotations[SIGNATURE_ANNOTATION]}

    def signer_of(layer: Descriptor) -> str | None:
        return "our-key" if layer.annotations[SIGNATURE_ANNOTATION] in mine else None

    merged, added = merge_layers([theirs, ours], [again], signer_of=signer_of)
    assert merged == [theirs, ours]
    assert added == []
    index_a = Descriptor("application/vnd.oci.image.manifest.v1+json", DIGEST, 10)
    index_b = Descriptor("application/vnd.oci.image.manifest.v1+json", "sha256:" + "cd" * 32, 9)
    merged_index, added_index = merge_index_entries([index_a], [index_b, index_a])
    assert merged_index == [index_a, index_b]
    assert added_index == [index_b]
