"""The payload cosign signs for an image: "simple signing" JSON, byte for byte as cosign writes it.

cosign marshals sigstore's `payload.SimpleContainerImage` with Go's encoding/json: struct fields
in declaration order (critical: identity, image, type; then optional), map keys sorted, no
spaces, and `<`, `>`, `&`, U+2028, U+2029 escaped. The same bytes come out here, so a payload
cip writes hashes like cosign's for the same inputs, and a rerun produces the same layer blob.

Verifiers read only `critical.type`, `critical.image.docker-manifest-digest` and `optional`
(cosign's SimpleClaimVerifier); `docker-reference` is informative, so signatures survive
promotion between registries.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from cip.model.refs import is_digest

COSIGN_SIGNATURE_TYPE = "cosign container image signature"


def _go_json(value: object) -> str:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=False)
    for char, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escaped)
    return text


def payload(docker_reference: str, digest: str, annotations: Mapping[str, str] | None) -> bytes:
    """The exact bytes cosign signs for `docker_reference@digest` with `-a` annotations."""
    body = {
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": digest},
            "type": COSIGN_SIGNATURE_TYPE,
        },
        "optional": dict(sorted(annotations.items())) if annotations else None,
    }
    return _go_json(body).encode()


@dataclass(frozen=True, slots=True)
class SimpleSigning:
    """What a verifier reads from a payload."""

    docker_reference: str
    digest: str
    type: str
    optional: Mapping[str, object] = field(default_factory=dict)


def parse_payload(data: bytes) -> SimpleSigning:
    """The claims of a simple-signing payload; ValueError when it is not one."""
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"payload is not JSON: {error}") from None
    critical = body.get("critical") if isinstance(body, dict) else None
    if not isinstance(critical, dict):
        raise ValueError("payload has no critical section")
    image = critical.get("image")
    identity = critical.get("identity")
    digest = image.get("docker-manifest-digest") if isinstance(image, dict) else None
    reference = identity.get("docker-reference") if isinstance(identity, dict) else None
    kind = critical.get("type")
    if not isinstance(digest, str) or not is_digest(digest):
        raise ValueError("payload names no image digest")
    optional = body.get("optional")
    return SimpleSigning(
        docker_reference=reference if isinstance(reference, str) else "",
        digest=digest,
        type=kind if isinstance(kind, str) else "",
        optional=optional if isinstance(optional, dict) else {},
    )


def claims_problem(
    claims: SimpleSigning, digest: str, annotations: Mapping[str, str] | None = None
) -> str | None:
    """Why a payload does not vouch for `digest` (cosign's checks), or None when it does."""
    if claims.type != COSIGN_SIGNATURE_TYPE:
        return f"payload type is {claims.type!r}, not {COSIGN_SIGNATURE_TYPE!r}"
    if claims.digest != digest:
        return f"payload signs {claims.digest}, not {digest}"
    for key, value in (annotations or {}).items():
        if claims.optional.get(key) != value:
            return f"payload lacks annotation {key}={value}"
    return None
