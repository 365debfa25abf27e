"""From signing flags to a `SigningSetup`, with every contradiction a usage error (exit 2)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from cip.model.manifest import PromoterManifest
from cip.model.refs import registry_name_problem

if TYPE_CHECKING:
    # Loaded by the functions that sign: flags are parsed, and `--parse-only` runs, without
    # the signing machinery (or, through it, the HTTP stack).
    from cip.promote.signing import SigningSetup
    from cip.trust.instance import SigstoreInstance
    from cip.trust.signer import Signer


def parse_annotations(values: Sequence[str]) -> dict[str, str]:
    annotations: dict[str, str] = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key:
            raise click.UsageError(f"--signature-annotation={value}: expected KEY=VALUE")
        annotations[key] = text
    return annotations


@dataclass(frozen=True)
class KeylessFlags:
    """The keyless signing flags, as given."""

    identity_token: str | None = None
    signer_account: str | None = None
    trust_config: str | None = None
    signature_format: str = "legacy"

    @property
    def formats(self) -> frozenset[str]:
        """`--signature-format` as the formats to write: both is legacy and bundle."""
        if self.signature_format == "both":
            return frozenset({"legacy", "bundle"})
        return frozenset({self.signature_format})

    @property
    def asked(self) -> bool:
        return self.identity_token is not None or self.signer_account is not None


def load_signer(
    signing_key: str | None, keyless: KeylessFlags, *, sign_asked: bool
) -> Signer | None:
    """The signer the flags name: a key, or an OIDC identity (a token, a token file, a service
    account, or `SIGSTORE_ID_TOKEN` when `--sign` asks for signing and names no other signer)."""
    from cip.trust.keys import load_private_key
    from cip.trust.signer import KeySigner
    from cip.trust.tokens import token_source

    if signing_key is not None and keyless.asked:
        raise click.UsageError(
            "--signing-key signs with a key; --identity-token and --signer-account sign "
            "keylessly: give one of them"
        )
    if signing_key is not None:
        if keyless.signature_format != "legacy":
            raise click.UsageError(
                f"--signature-format={keyless.signature_format} is for keyless signatures; "
                "key signatures are written in the legacy format"
            )
        return KeySigner(load_private_key(signing_key))
    if not keyless.asked and not sign_asked:
        return None
    tokens = token_source(keyless.identity_token, keyless.signer_account)
    if tokens is None:
        return None
    from cip.trust.keyless import KeylessSigner  # sigstore loads only when signing keylessly

    return KeylessSigner(sigstore_instance(keyless), tokens)


def sigstore_instance(keyless: KeylessFlags) -> SigstoreInstance:
    from cip.trust.instance import load_instance

    return load_instance(keyless.trust_config, legacy_log=keyless.signature_format != "bundle")


def signing_setup(
    manifests: Sequence[PromoterManifest],
    *,
    signing_key: str | None,
    keyless: KeylessFlags,
    sign: bool | None,
    primary_registry: str | None,
    signing_identity: str | None,
    signature_annotations: Sequence[str],
    copy_attached: bool,
    max_signature_ops: int,
    max_signature_copies: int,
    verifying_keyless: bool = False,
    attesting: bool | None = None,
    builder_id: str | None = None,
) -> SigningSetup | None:
    """None when signing is off: no signer, or `--sign=false`.

    `attesting` (True for `cip run`) turns on promotion attestations, made by the same signer,
    with `builder_id` (`--builder-id`, default cip's own); commands that only check signatures
    leave it out.
    """
    from cip.plan.planner import SigningPolicy
    from cip.promote.signing import SigningSetup
    from cip.trust.attest import AttestationService
    from cip.trust.signing import SignatureService
    from cip.trust.statements import DEFAULT_BUILDER_ID
    from cip.trust.tokens import TOKEN_ENV

    wanted = sign if sign is not None else (signing_key is not None or keyless.asked)
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
    if not wanted or signing_key is not None:
        for flag, given in (
            ("--sigstore-trust-config", keyless.trust_config is not None and not verifying_keyless),
            (
                f"--signature-format={keyless.signature_format}",
                keyless.signature_format != "legacy",
            ),
        ):
            if given and signing_key is None:
                raise click.UsageError(f"{flag} is for keyless signing, which is off")
    if not wanted:
        return None
    signer = load_signer(signing_key, keyless, sign_asked=True)
    if signer is None:
        raise click.UsageError(
            "--sign needs a signer: give --signing-key FILE, --identity-token, "
            f"--signer-account or {TOKEN_ENV}"
        )
    service = SignatureService(
        signer, annotations=annotations, copy_attached=copy_attached, formats=keyless.formats
    )
    attest = bool(attesting)
    return SigningSetup(
        service=service,
        policy=SigningPolicy(primary=primary_registry, formats=keyless.formats, attest=attest),
        identity_registry=signing_identity,
        max_ops=max_signature_ops,
        max_copies=max_signature_copies,
        attestations=AttestationService(service) if attest else None,
        builder_id=builder_id or DEFAULT_BUILDER_ID,
    )
