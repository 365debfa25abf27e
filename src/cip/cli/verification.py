"""The flags that verify staging before a run promotes (phases provenance and validate), and the
`StagingPolicy` they make; every contradiction is a usage error (exit 2).

Whose signatures count is cosign's vocabulary: `--verify-key FILE` for key signatures, and the
identity policy `--certificate-identity[-regexp]` with `--certificate-oidc-issuer[-regexp]` for
keyless ones (trusting `--sigstore-trust-config`, default the public-good instance). Either or
both may be given; without them nothing is verified, and a flag that only means something with
a policy is refused rather than ignored.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from cip.cli.options import keyless_policy_flags
from cip.cli.signing import KeylessFlags, sigstore_instance
from cip.errors import UsageError

if TYPE_CHECKING:
    # Loaded by `staging_policy` when a policy is given: the flags are parsed without the
    # verification machinery.
    from cip.trust.identity import IdentityPolicy
    from cip.trust.judge import StagingPolicy
    from cip.trust.signer import Signer

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class VerificationFlags:
    verify_key: str | None = None
    certificate_identity: str | None = None
    certificate_identity_regexp: str | None = None
    certificate_oidc_issuer: str | None = None
    certificate_oidc_issuer_regexp: str | None = None
    require_signature: bool = False
    require_provenance: bool = False
    provenance_builder_id: str | None = None
    provenance_source_uri: str | None = None

    def given(self) -> list[str]:
        """The flags given, as the user wrote them."""
        return [
            "--" + f.name.replace("_", "-")
            for f in fields(self)
            if getattr(self, f.name) not in (None, False)
        ]


def identity_policy(
    identity: str | None,
    identity_regexp: str | None,
    issuer: str | None,
    issuer_regexp: str | None,
) -> IdentityPolicy | None:
    """cosign's identity flags as a policy: one of each pair, both pairs, or none at all."""
    if identity is None and identity_regexp is None and issuer is None and issuer_regexp is None:
        return None
    if (identity is None) == (identity_regexp is None):
        raise UsageError("give one of --certificate-identity and --certificate-identity-regexp")
    if (issuer is None) == (issuer_regexp is None):
        raise UsageError(
            "give one of --certificate-oidc-issuer and --certificate-oidc-issuer-regexp"
        )
    from cip.trust.identity import IdentityPolicy

    try:
        return IdentityPolicy(identity, identity_regexp, issuer, issuer_regexp)
    except ValueError as error:
        raise UsageError(str(error)) from None


def _pattern(flag: str, value: str | None) -> re.Pattern[str] | None:
    if value is None:
        return None
    try:
        return re.compile(value)
    except re.error as error:
        raise UsageError(f"{flag}={value}: not a regular expression ({error})") from None


def staging_policy(
    flags: VerificationFlags, keyless: KeylessFlags, signer: Signer | None
) -> StagingPolicy | None:
    """The policy staging must meet, or None when no flag asks for verification."""
    identity = identity_policy(
        flags.certificate_identity,
        flags.certificate_identity_regexp,
        flags.certificate_oidc_issuer,
        flags.certificate_oidc_issuer_regexp,
    )
    if identity is None and flags.verify_key is None:
        given = flags.given()
        if given:
            raise UsageError(
                f"{', '.join(given)}: needs a verification policy: --verify-key FILE and/or "
                "--certificate-identity[-regexp] with --certificate-oidc-issuer[-regexp]"
            )
        return None
    from cip.trust.judge import StagingPolicy
    from cip.trust.keys import load_public_key
    from cip.trust.signer import KeyVerifier
    from cip.trust.statements import ProvenancePolicy

    keys = (KeyVerifier(load_public_key(flags.verify_key)),) if flags.verify_key else ()
    provenance = ProvenancePolicy(
        _pattern("--provenance-builder-id", flags.provenance_builder_id),
        _pattern("--provenance-source-uri", flags.provenance_source_uri),
    )
    policy = StagingPolicy(
        keys=keys,
        provenance=provenance,
        require_signature=flags.require_signature,
        require_provenance=flags.require_provenance,
    )
    if identity is None:
        return policy
    # sigstore loads only when keyless signatures are verified.
    from cip.trust.bundle_verify import BundleVerifier
    from cip.trust.keyless import KeylessSigner
    from cip.trust.keyless_verify import LegacyKeylessVerifier

    instance = signer.instance if isinstance(signer, KeylessSigner) else sigstore_instance(keyless)
    return StagingPolicy(
        keys=keys,
        keyless=LegacyKeylessVerifier(instance.material, identity),
        bundles=BundleVerifier(instance.config.trusted_root, identity),
        provenance=provenance,
        require_signature=flags.require_signature,
        require_provenance=flags.require_provenance,
    )


def verification_options(func: F) -> F:
    """Staging's verification flags; the command receives them as `verification`."""
    names = [f.name for f in fields(VerificationFlags)]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        flags = VerificationFlags(**{name: kwargs.pop(name) for name in names})
        return func(*args, verification=flags, **kwargs)

    options: list[Callable[[Any], Any]] = [
        click.option(
            "--verify-key",
            metavar="FILE",
            help="Verify staging's signatures and provenance attestations with this PEM "
            "public key (cosign.pub) before promoting; with --vuln-severity-threshold, read "
            "vulnerability attestations signed by it too.",
        ),
        *keyless_policy_flags(),
        click.option(
            "--require-signature",
            is_flag=True,
            help="Hold back images staging has not signed (signature-missing).",
        ),
        click.option(
            "--require-provenance",
            is_flag=True,
            help="Hold back images without SLSA provenance in staging (provenance-missing).",
        ),
        click.option(
            "--provenance-builder-id",
            metavar="REGEX",
            help="The provenance's builder id must match this regular expression.",
        ),
        click.option(
            "--provenance-source-uri",
            metavar="REGEX",
            help="A source the provenance names must match this regular expression.",
        ),
    ]
    decorated: Callable[..., Any] = wrapper
    for option in reversed(options):
        decorated = option(decorated)
    return cast(F, decorated)
