"""`cip verify`: is every edge of the manifests in place? Or, with --merge, how did the shards do?

Verification re-reads the destinations only (never a source) and exits 1 listing every edge
not in place (and, given a verify policy, every destination digest whose signature is missing
or does not verify), so it is the check to run after a promotion, after a sharded run's last
shard, or on a schedule. The command wires flags to `promote.verify` and renders with `report/`.
"""

from __future__ import annotations

import logging
import sys

import click

from cip.cli.handling import handle_cip_errors, print_diagnostics
from cip.cli.interrupts import until_signalled
from cip.cli.logs import log_level_option
from cip.cli.loop import run_coroutine
from cip.cli.network import NetworkFlags
from cip.cli.options import (
    keyless_policy_options,
    manifest_options,
    network_options,
    output_option,
    selection_options,
    shard_from_options,
    shard_options,
    sigstore_trust_config_option,
    verify_key_option,
)
from cip.cli.sigcheck import policy_verifier
from cip.cli.signing import KeylessFlags
from cip.cli.verification import identity_policy
from cip.errors import ExitCode
from cip.plan.edges import EdgeGroup
from cip.plan.shards import Shard
from cip.plan.verification import Verification
from cip.promote.pipeline import Selection, load_and_validate, request_table, select
from cip.promote.tally import Tally
from cip.promote.verify import verify_destinations
from cip.registry.pool import RegistryPool
from cip.report.document import merged_json, verification_json
from cip.report.merge import merge, merged_text, read_documents
from cip.report.progress import RequestProgress
from cip.report.verification import verification_text
from cip.trust.signer import Verifier

log = logging.getLogger("cip.verify")

OUTPUTS = ("text", "json")

VERIFY_HELP = """Check that every edge of the manifests is in place at its destination.

\b
Reads the destinations only (a tag listing per repository, plus a HEAD per
tag where the registry's listing carries no digests) and lists every edge
not in place: its digest missing, its tag missing, its tag on another digest,
or its destination unreadable. With a verify policy (--verify-key, or
--certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp]) it
also lists every destination digest, index children included, whose
signature is missing or does not verify, as cip sigcheck checks them.

\b
Examples:
  cip verify --thin-manifest-dir=DIR
  cip verify --thin-manifest-dir=DIR --shard-count=4 --shard-index=2
  cip verify --thin-manifest-dir=DIR --verify-key=cosign.pub
  cip verify --merge shard-*.json            # one summary of a sharded run

\b
Exit codes: 0 every edge in place and, with a policy, signed (with --merge:
every shard there and ok); 1 edges not in place or signatures not verified
(a shard missing or not ok); 2 bad input or usage.
"""


@click.command("verify", help=VERIFY_HELP)
@manifest_options
@output_option("text or json (default text).")
@selection_options
@shard_options
@network_options
@verify_key_option
@keyless_policy_options
@sigstore_trust_config_option
@click.option(
    "--merge",
    is_flag=True,
    help="Summarise the JSON documents of a run's shards (FILES) instead of reading registries.",
)
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@log_level_option
@handle_cip_errors
def verify_command(
    manifests: tuple[str, ...],
    thin_dirs: tuple[str, ...],
    output: str | None,
    diff_base: str | None,
    manifest_diff_since: str | None,
    use_prow_manifest_diff: bool,
    images: tuple[str, ...],
    shard_index: int | None,
    shard_count: int | None,
    network: NetworkFlags,
    verify_key: str | None,
    certificate_identity: str | None,
    certificate_identity_regexp: str | None,
    certificate_oidc_issuer: str | None,
    certificate_oidc_issuer_regexp: str | None,
    sigstore_trust_config: str | None,
    merge: bool,
    files: tuple[str, ...],
) -> None:
    output = output or OUTPUTS[0]
    if output not in OUTPUTS:
        raise click.UsageError(f"--output={output} is not available; choose text or json")
    policy = identity_policy(
        certificate_identity,
        certificate_identity_regexp,
        certificate_oidc_issuer,
        certificate_oidc_issuer_regexp,
    )
    if merge:
        sharding = (shard_index, shard_count) if shard_count is not None else None
        reading = manifests or thin_dirs or images or diff_base or manifest_diff_since
        checking = verify_key or policy or sigstore_trust_config
        if reading or use_prow_manifest_diff or sharding or checking:
            raise click.UsageError(
                "--merge reads the shards' documents, not manifests or registries: "
                "drop the manifest, selection, shard and verify policy flags"
            )
        _merge(files, output)
        return
    if files:
        raise click.UsageError(f"unexpected argument {files[0]!r} (documents go with --merge)")
    if not (manifests or thin_dirs):
        raise click.UsageError("name the manifests: --manifest or --thin-manifest-dir")
    if sum(x is not None for x in (diff_base, manifest_diff_since)) + use_prow_manifest_diff > 1:
        raise click.UsageError(
            "--diff-base, --manifest-diff-since and --use-prow-manifest-diff exclude each other"
        )
    if sigstore_trust_config is not None and policy is None:
        raise click.UsageError(
            "--sigstore-trust-config is the trust of keyless signatures: give it with "
            "--certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp]"
        )
    keyless = KeylessFlags(None, None, sigstore_trust_config, "legacy")
    verifier = policy_verifier(verify_key, policy, keyless)
    sharding = shard_from_options(shard_index, shard_count)
    shard = Shard(*sharding) if sharding is not None else None
    network.limits()  # a malformed --rate-limit is refused before the manifests load
    validated = load_and_validate(list(manifests), list(thin_dirs))
    print_diagnostics(validated.warnings)
    selection = Selection(diff_base, manifest_diff_since, use_prow_manifest_diff, images, shard)
    groups = select(validated, selection)
    if shard is not None:
        log.info("%s: %s of the selected image digests", shard, f"{len(groups):,}")
    pool = network.pool(validated.manifests)
    tally = Tally("repositories", "read")
    verification, requests = run_coroutine(
        until_signalled(_verify(groups, pool, network.concurrency, tally, verifier), tally)
    )
    if output == "json":
        click.echo(
            verification_json(
                verification,
                warnings=validated.warnings,
                requests=requests,
                summary=validated.summary,
                shard=sharding,
            )
        )
    else:
        click.echo(verification_text(verification))
    if not verification.ok:
        sys.exit(int(ExitCode.FAILED))


async def _verify(
    groups: list[EdgeGroup],
    pool: RegistryPool,
    concurrency: int,
    tally: Tally,
    verifier: Verifier | None,
) -> tuple[Verification, dict[str, dict[str, int]]]:
    async with pool:
        with RequestProgress("verify", "registry requests") as advance:
            verification = await verify_destinations(
                groups,
                pool,
                concurrency=concurrency,
                progress=advance,
                tally=tally,
                verifier=verifier,
            )
        log.info(
            "verified %s edges at their destinations; %s registry requests",
            f"{verification.edges:,}",
            f"{pool.counter.total:,}",
        )
        return verification, request_table(pool)


def _merge(files: tuple[str, ...], output: str) -> None:
    merged = merge(read_documents(files))
    click.echo(merged_json(merged) if output == "json" else merged_text(merged))
    if not merged.ok:
        sys.exit(int(ExitCode.FAILED))
