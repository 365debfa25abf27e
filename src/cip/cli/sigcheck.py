"""`cip sigcheck`: every promoted digest on every destination must carry a valid signature."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from cip.cli.handling import handle_cip_errors, print_diagnostics
from cip.cli.interrupts import until_signalled
from cip.cli.kpromo import KpromoCommand
from cip.cli.loop import run_coroutine
from cip.cli.network import NetworkFlags
from cip.cli.options import (
    keyless_policy_options,
    manifest_options,
    network_options,
    output_option,
    selection_options,
    signing_options,
    verify_key_option,
)
from cip.cli.signing import KeylessFlags, signing_setup, sigstore_instance
from cip.cli.verification import identity_policy
from cip.errors import ExitCode, UsageError
from cip.plan.edges import EdgeGroup
from cip.plan.planner import SigningPolicy
from cip.promote.pipeline import Selection, load_and_validate, request_table, select
from cip.promote.sigcheck import SigcheckResult, check_signatures, repair_signatures
from cip.promote.signing import SigningSetup
from cip.promote.tally import Tally
from cip.registry.pool import RegistryPool
from cip.report.signatures import sigcheck_json, sigcheck_text
from cip.trust.identity import IdentityPolicy
from cip.trust.keys import load_public_key
from cip.trust.signer import KeySigner, KeyVerifier, Verifier
from cip.trust.signing import SignatureService

if TYPE_CHECKING:
    from cip.trust.instance import SigstoreInstance

HELP = """Check that every promoted digest (index children included) on every destination
carries a signature that verifies with --verify-key, or a keyless signature of the identity
--certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp] name (trusting
--sigstore-trust-config, default the public-good instance); with --confirm, repair what is
missing or invalid: merge a valid signature from another destination, else sign (needs
--signing-key, --identity-token or --signer-account).

\b
Exit codes: 0 every signature valid (or repaired); 1 missing or invalid signatures remain;
2 invalid manifests or usage.
"""


@click.command("sigcheck", cls=KpromoCommand, help=HELP)
@manifest_options
@verify_key_option
@click.option("--confirm", is_flag=True, help="Repair missing or invalid signatures.")
@output_option("text or json (default text).")
@selection_options
@network_options
@signing_options
@keyless_policy_options
@handle_cip_errors
def sigcheck_command(
    manifests: tuple[str, ...],
    thin_dirs: tuple[str, ...],
    verify_key: str | None,
    confirm: bool,
    output: str | None,
    diff_base: str | None,
    manifest_diff_since: str | None,
    use_prow_manifest_diff: bool,
    images: tuple[str, ...],
    network: NetworkFlags,
    signing_key: str | None,
    identity_token: str | None,
    signer_account: str | None,
    sigstore_trust_config: str | None,
    signature_format: str,
    sign: bool | None,
    primary_registry: str | None,
    signing_identity: str | None,
    signature_annotations: tuple[str, ...],
    copy_attached: bool,
    max_signature_ops: int,
    max_signature_copies: int,
    certificate_identity: str | None,
    certificate_identity_regexp: str | None,
    certificate_oidc_issuer: str | None,
    certificate_oidc_issuer_regexp: str | None,
) -> None:
    output = output or "text"
    keyless = KeylessFlags(identity_token, signer_account, sigstore_trust_config, signature_format)
    if signature_format != "legacy":
        raise UsageError(
            f"--signature-format={signature_format}: sigcheck checks and repairs legacy .sig "
            "signatures; checking bundles is not supported yet"
        )
    policy = identity_policy(
        certificate_identity,
        certificate_identity_regexp,
        certificate_oidc_issuer,
        certificate_oidc_issuer_regexp,
    )
    if output not in ("text", "json"):
        raise click.UsageError(f"--output={output}: choose text or json")
    validated = load_and_validate(list(manifests), list(thin_dirs))
    print_diagnostics(validated.warnings)
    setup = signing_setup(
        validated.manifests,
        signing_key=signing_key,
        keyless=keyless,
        sign=sign,
        primary_registry=primary_registry,
        signing_identity=signing_identity,
        signature_annotations=signature_annotations,
        copy_attached=copy_attached,
        max_signature_ops=max_signature_ops,
        max_signature_copies=max_signature_copies,
        verifying_keyless=policy is not None,
    )
    verifier = _verifier(verify_key, setup, policy, keyless)
    if setup is None:
        # Repairs by merging need no signer; signing anew does.
        setup = SigningSetup(SignatureService(None), SigningPolicy(primary=primary_registry))
    groups = select(
        validated, Selection(diff_base, manifest_diff_since, use_prow_manifest_diff, images)
    )
    pool = network.pool(validated.manifests)
    tally = Tally("digests", "checked")
    result = run_coroutine(
        until_signalled(
            _check(groups, pool, verifier, setup, confirm, network.concurrency, tally), tally
        )
    )
    if output == "json":
        click.echo(
            sigcheck_json(
                result,
                confirm=confirm,
                warnings=validated.warnings,
                requests=request_table(pool),
            )
        )
    else:
        click.echo(sigcheck_text(result, confirm=confirm))
    if not result.ok:
        sys.exit(int(ExitCode.FAILED))


def policy_verifier(
    verify_key: str | None,
    policy: IdentityPolicy | None,
    keyless: KeylessFlags,
    instance: SigstoreInstance | None = None,
) -> Verifier | None:
    """The verify policy the flags give, shared by sigcheck and verify: a public key, or a
    keyless identity trusting `instance` (default: --sigstore-trust-config's); None for none."""
    if policy is not None:
        if verify_key is not None:
            raise UsageError(
                "--verify-key checks key signatures, --certificate-* keyless ones: give one"
            )
        from cip.trust.keyless_verify import LegacyKeylessVerifier  # sigstore: keyless only

        material = (instance or sigstore_instance(keyless)).material
        return LegacyKeylessVerifier(material, policy)
    if verify_key is not None:
        return KeyVerifier(load_public_key(verify_key))
    return None


def _verifier(
    verify_key: str | None,
    setup: SigningSetup | None,
    policy: IdentityPolicy | None,
    keyless: KeylessFlags,
) -> Verifier:
    signer = setup.service.signer if setup is not None else None
    if policy is not None:
        if isinstance(signer, KeySigner):
            raise UsageError(
                "--signing-key cannot repair keyless signatures; give --identity-token"
            )
        from cip.trust.keyless import KeylessSigner  # sigstore loads only for keyless checks

        instance = signer.instance if isinstance(signer, KeylessSigner) else None
        found = policy_verifier(verify_key, policy, keyless, instance)
        assert found is not None  # a policy was given
        return found
    if signer is not None and not isinstance(signer, KeySigner):  # keyless, without a policy
        raise UsageError(
            "checking keyless signatures needs --certificate-identity[-regexp] and "
            "--certificate-oidc-issuer[-regexp]"
        )
    if verify_key is None:
        if signer is None:
            raise UsageError("sigcheck needs --verify-key FILE (or --signing-key)")
        return signer.verifier()
    verifier = policy_verifier(verify_key, None, keyless)
    assert verifier is not None  # a key was given
    if signer is not None and signer.identity != verifier.identity:
        raise UsageError(
            f"--signing-key is not the private half of --verify-key={verify_key}: "
            "its repairs would not verify"
        )
    return verifier


async def _check(
    groups: list[EdgeGroup],
    pool: RegistryPool,
    verifier: Verifier,
    setup: SigningSetup,
    confirm: bool,
    concurrency: int,
    tally: Tally,
) -> SigcheckResult:
    async with pool:
        result = await check_signatures(
            groups, pool, verifier, concurrency=concurrency, tally=tally
        )
        if confirm and (result.findings or result.errors):
            result = await repair_signatures(result, groups, pool, setup)
    return result
