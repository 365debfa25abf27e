"""From signing flags to a `SigningSetup`, with every contradiction a usage error (exit 2)."""

from __future__ import annotations

from collections.abc import Sequence

import click

from cip.model.manifest import PromoterManifest
from cip.model.refs import registry_name_problem
from cip.plan.planner import SigningPolicy
from cip.promote.signing import SigningSetup
from cip.trust.keys import load_private_key
from cip.trust.signer import KeySigner, Signer
from cip.trust.signing import SignatureService


def parse_annotations(values: Sequence[str]) -> dict[str, str]:
    annotations: dict[str, str] = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key:
            raise click.UsageError(f"--signature-annotation={value}: expected KEY=VALUE")
        annotations[key] = text
    return annotations


def load_signer(signing_key: str | None) -> Signer | None:
    return KeySigner(load_private_key(signing_key)) if signing_key is not None else None


def signing_setup(
    manifests: Sequence[PromoterManifest],
    *,
    signing_key: str | None,
    sign: bool | None,
    primary_registry: str | None,
    signing_identity: str | None,
    signature_annotations: Sequence[str],
    copy_attached: bool,
    max_signature_ops: int,
    max_signature_copies: int,
) -> SigningSetup | None:
    """None when signing is off: no key, or `--sign=false`."""
    wanted = sign if sign is not None else signing_key is not None
    annotations = parse_annotations(signature_annotations)
    if signing_identity is not None:
        problem = registry_name_problem(signing_identity)
        if problem is not None or signing_identity.startswith("oci:"):
            raise click.UsageError(f"--signing-identity={signing_identity}: {problem or 'oci:'}")
    if primary_registry is not None:
        names = {spec.name for m in manifests for spec in m.destinations}
        if manifests and primary_registry not in names:
            raise click.UsageError(
                f"--primary-registry={primary_registry} is not a destination of any manifest"
            )
    if not wanted:
        return None
    if signing_key is None:
        raise click.UsageError("--sign needs a signer: give --signing-key FILE")
    signer = load_signer(signing_key)
    return SigningSetup(
        service=SignatureService(signer, annotations=annotations, copy_attached=copy_attached),
        policy=SigningPolicy(primary=primary_registry),
        identity_registry=signing_identity,
        max_ops=max_signature_ops,
        max_copies=max_signature_copies,
    )
