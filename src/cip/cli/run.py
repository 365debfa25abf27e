"""`cip run`: validate, plan and promote what the manifests list; or print a snapshot.

The command only wires flags to the pipeline in `promote/` and the renderers in `report/`;
everything it decides is data returned by those layers.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import replace
from typing import TYPE_CHECKING

import click

from cip.cli.handling import handle_cip_errors, print_diagnostics
from cip.cli.interrupts import Interrupted, until_signalled
from cip.cli.kpromo import KpromoCommand
from cip.cli.logs import log_level_option
from cip.cli.loop import run_coroutine
from cip.cli.network import NetworkFlags
from cip.cli.options import (
    manifest_options,
    max_image_size_option,
    network_options,
    output_option,
    selection_options,
    shard_from_options,
    shard_options,
    signing_options,
)
from cip.cli.signing import KeylessFlags, signing_setup
from cip.cli.verification import VerificationFlags, staging_policy, verification_options
from cip.cli.vuln import VulnFlags, vuln_gate, vulnerability_options_sharing_key
from cip.errors import ExitCode, UsageError
from cip.trust.statements import DEFAULT_BUILDER_ID

if TYPE_CHECKING:
    # Imported where used: `--parse-only` and offline snapshots never load the HTTP stack,
    # which is most of what start-up would otherwise cost.
    from cip.plan.edges import EdgeGroup
    from cip.plan.snapshot import Snapshot
    from cip.promote.executor import EdgeTally
    from cip.promote.pipeline import RunOutcome
    from cip.promote.signing import SigningSetup
    from cip.registry.pool import RegistryPool
    from cip.registry.snapshot import RegistrySnapshot
    from cip.trust.judge import StagingPolicy
    from cip.vuln.gate import VulnGate

log = logging.getLogger(__name__)

RUN_OUTPUTS = ("text", "json")
SNAPSHOT_OUTPUTS = ("yaml", "csv")

RUN_HELP = """Promote images listed in promoter manifests (a dry run unless --confirm).

\b
Examples:
  cip run --thin-manifest-dir=k8s.io/registry.k8s.io --parse-only
  cip run --manifest=promoter.yaml                  # dry run: plan and report
  cip run --manifest=promoter.yaml --confirm        # promote
  cip run --thin-manifest-dir=DIR --manifest-based-snapshot-of=registry.k8s.io --output=csv
  cip run --snapshot=gcr.io/k8s-staging-foo --minimal-snapshot
  cip run --thin-manifest-dir=DIR --confirm --shard-count=4 --shard-index=0

\b
Booleans also take Go's form (--confirm=true, --sign=false), and --threads is
--concurrency, as kpromo cip reads them.

\b
Staging is verified before anything is copied, in dry runs too, when a policy
is given (--verify-key, --certificate-identity[-regexp] with
--certificate-oidc-issuer[-regexp]): signatures and SLSA provenance attached to
an image must verify if present (--require-signature, --require-provenance:
also when absent).

\b
Exit codes: 0 ok (warnings do not change it); 1 lost images, refused tag
moves, failed edges or images held back (--max-image-size,
--vuln-severity-threshold, staging's signatures or provenance); 2 invalid
manifests or usage; 130/143 interrupted.
"""


def _print_snapshot(rows: Snapshot, output: str) -> None:
    from cip.plan.snapshot import render_csv, render_yaml

    click.echo(render_csv(rows) if output == "csv" else render_yaml(rows), nl=False)


@click.command("run", cls=KpromoCommand, help=RUN_HELP)
@manifest_options
@click.option("--parse-only", is_flag=True, help="Load and validate manifests, then stop.")
@click.option("--confirm", is_flag=True, help="Write to the destination registries.")
@click.option("--snapshot", metavar="REG[/PATH]", help="Print what a registry holds.")
@click.option("--snapshot-tag", metavar="TAG", help="With --snapshot: only digests carrying TAG.")
@click.option(
    "--minimal-snapshot",
    is_flag=True,
    help="With --snapshot: drop untagged children of manifest lists.",
)
@click.option(
    "--manifest-based-snapshot-of",
    "manifest_snapshot_of",
    metavar="REG[/PATH]",
    help="Print what the manifests would put into REG (offline).",
)
@output_option("text|json for runs (default text); yaml|csv for snapshots (default yaml).")
@selection_options
@shard_options
@network_options
@click.option(
    "--include-foreign-layers",
    is_flag=True,
    help="Also copy non-distributable (foreign) layers; by default they are reported only.",
)
@max_image_size_option(
    None,
    "Hold back copies of images whose compressed size (config and layers, all platforms) "
    "is above MIB mebibytes: a too-large verdict, exit 1.",
)
@vulnerability_options_sharing_key
@log_level_option
@signing_options
@click.option(
    "--builder-id",
    metavar="URI",
    help="The builderId of promotion attestations (made with signing). Default: "
    f"{DEFAULT_BUILDER_ID}.",
)
@verification_options
@handle_cip_errors
def run_command(
    manifests: tuple[str, ...],
    thin_dirs: tuple[str, ...],
    parse_only: bool,
    confirm: bool,
    snapshot: str | None,
    snapshot_tag: str | None,
    minimal_snapshot: bool,
    manifest_snapshot_of: str | None,
    output: str | None,
    diff_base: str | None,
    manifest_diff_since: str | None,
    use_prow_manifest_diff: bool,
    images: tuple[str, ...],
    shard_index: int | None,
    shard_count: int | None,
    network: NetworkFlags,
    include_foreign_layers: bool,
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
    builder_id: str | None,
    max_image_size: int | None,
    vuln: VulnFlags,
    verification: VerificationFlags,
) -> None:
    snapshot_mode = snapshot is not None or manifest_snapshot_of is not None
    allowed = SNAPSHOT_OUTPUTS if snapshot_mode else RUN_OUTPUTS
    output = output or allowed[0]
    if output not in allowed:
        mode = "snapshots" if snapshot_mode else "runs"
        raise click.UsageError(
            f"--output={output} is not available for {mode}; choose {' or '.join(allowed)}"
        )
    if snapshot is not None and (manifests or thin_dirs):
        raise click.UsageError(
            "--snapshot reads a registry, not manifests: drop --manifest and --thin-manifest-dir "
            "(or use --manifest-based-snapshot-of)"
        )
    if manifest_snapshot_of is not None:
        from cip.model.refs import registry_name_problem

        problem = registry_name_problem(manifest_snapshot_of)
        if problem is not None:
            raise UsageError(f"--manifest-based-snapshot-of={manifest_snapshot_of}: {problem}")
    if snapshot is not None and manifest_snapshot_of is not None:
        raise click.UsageError("--snapshot and --manifest-based-snapshot-of exclude each other")
    if (snapshot_tag or minimal_snapshot) and snapshot is None:
        raise click.UsageError("--snapshot-tag and --minimal-snapshot need --snapshot")
    keyless = KeylessFlags(identity_token, signer_account, sigstore_trust_config, signature_format)
    signing_asked = signing_key is not None or sign is not None or keyless.asked
    if (signing_asked or builder_id is not None) and (parse_only or snapshot_mode):
        raise click.UsageError(
            "signing flags (--signing-key, --identity-token, --signer-account, --sign, "
            "--builder-id) cannot be combined with --parse-only or a snapshot"
        )
    if verification.given() and (parse_only or snapshot_mode):
        raise click.UsageError(
            f"{verification.given()[0]} verifies staging before a promotion: it cannot be "
            "combined with --parse-only or a snapshot"
        )
    if confirm and (parse_only or snapshot_mode):
        raise click.UsageError("--confirm cannot be combined with --parse-only or a snapshot")
    if (vuln.vuln_severity_threshold is not None or vuln.given()) and (parse_only or snapshot_mode):
        raise click.UsageError(
            "the vulnerability gate's flags cannot be combined with --parse-only or a snapshot"
        )
    if sum(x is not None for x in (diff_base, manifest_diff_since)) + use_prow_manifest_diff > 1:
        raise click.UsageError(
            "--diff-base, --manifest-diff-since and --use-prow-manifest-diff exclude each other"
        )
    sharding = shard_from_options(shard_index, shard_count)
    if sharding is not None and (snapshot_mode or parse_only):
        raise click.UsageError("--shard-count plans and promotes; it has no meaning here")
    from cip.plan.shards import Shard

    shard = Shard(*sharding) if sharding is not None else None
    network.limits()  # a malformed --rate-limit is refused even where no registry is read
    # One --verify-key: staging's signatures and provenance, and (with a threshold) the gate's
    # vulnerability attestations.
    shared_key = verification.verify_key if vuln.vuln_severity_threshold is not None else None
    gate = vuln_gate(replace(vuln, verify_key=shared_key), network.options())

    if snapshot is not None:
        from cip.report.text import snapshot_notes

        pool = network.pool()
        found = run_coroutine(
            until_signalled(
                _registry_snapshot(
                    snapshot, pool, minimal_snapshot, snapshot_tag, network.concurrency
                )
            )
        )
        for note in snapshot_notes(snapshot, found.names_below, found.tags_only):
            click.echo(note, err=True)
        _print_snapshot(found.rows, output)
        return

    from cip.promote.pipeline import Selection, load_and_validate, select

    validated = load_and_validate(list(manifests), list(thin_dirs))
    print_diagnostics(validated.warnings)

    if manifest_snapshot_of is not None:
        from cip.plan.snapshot import manifest_based_snapshot

        rows = manifest_based_snapshot(validated.manifests, manifest_snapshot_of)
        _print_snapshot(rows, output)
        return
    if parse_only:
        if output == "json":
            from cip.report.document import parse_summary_json

            click.echo(parse_summary_json(validated.summary, validated.warnings))
        else:
            from cip.report.text import parse_summary_text

            click.echo(parse_summary_text(validated.summary, len(validated.warnings)))
        return
    signing = signing_setup(
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
        verifying_keyless=verification.certificate_identity is not None
        or verification.certificate_identity_regexp is not None,
        attesting=True,
        builder_id=builder_id,
    )
    if builder_id is not None and signing is None:
        raise click.UsageError(
            "--builder-id names the builder of promotion attestations: it "
            "needs signing (--signing-key, --identity-token, …)"
        )
    staging = staging_policy(
        verification, keyless, signing.service.signer if signing is not None else None
    )
    selection = Selection(diff_base, manifest_diff_since, use_prow_manifest_diff, images, shard)
    groups = select(validated, selection)
    log.debug("selected %d of %d image digests", len(groups), len(validated.groups))
    if shard is not None:
        log.info("%s: %s of the selected image digests", shard, f"{len(groups):,}")
    pool = network.pool(validated.manifests)
    from cip.promote.executor import EdgeTally

    tally = EdgeTally()
    try:
        outcome = run_coroutine(
            until_signalled(
                _run(
                    groups,
                    pool,
                    network.concurrency,
                    confirm,
                    include_foreign_layers,
                    signing,
                    max_image_size,
                    gate if gate is not None and gate.policy.active else None,
                    tally,
                    staging,
                    copy_attached,
                )
            )
        )
    except Interrupted as interrupt:
        raise Interrupted(interrupt.signal_name, tally.done, tally.not_started) from None
    result = outcome.plan
    stats = outcome.report.stats if outcome.report is not None else None
    print_diagnostics(outcome.warnings)
    if output == "json":
        from cip.report.document import plan_json

        click.echo(
            plan_json(
                result,
                dry_run=not confirm,
                warnings=[*validated.warnings, *outcome.warnings],
                requests=outcome.requests,
                summary=validated.summary,
                stats=stats,
                shard=sharding,
            )
        )
    else:
        from cip.report.text import plan_text

        click.echo(plan_text(result, dry_run=not confirm, stats=stats))
    if result.has_problems:
        sys.exit(int(ExitCode.FAILED))


async def _run(
    groups: list[EdgeGroup],
    pool: RegistryPool,
    concurrency: int,
    confirm: bool,
    include_foreign_layers: bool,
    signing: SigningSetup | None,
    max_image_size: int | None,
    vuln_gate: VulnGate | None,
    tally: EdgeTally,
    staging: StagingPolicy | None,
    copy_attached: bool,
) -> RunOutcome:
    from cip.promote.pipeline import Phase, run_phases
    from cip.report.progress import RequestProgress

    def on_phase(phase: Phase, summary: str) -> None:
        log.info("phase %s: %s", phase.value, summary)

    async with pool:
        outcome = await run_phases(
            groups,
            pool,
            confirm=confirm,
            concurrency=concurrency,
            include_foreign_layers=include_foreign_layers,
            max_image_size=max_image_size,
            vuln_gate=vuln_gate,
            on_phase=on_phase,
            progress=RequestProgress,
            signing=signing,
            tally=tally,
            staging=staging,
            copy_attached=copy_attached,
        )
    return outcome


async def _registry_snapshot(
    name: str, pool: RegistryPool, minimal: bool, only_tag: str | None, concurrency: int
) -> RegistrySnapshot:
    from cip.model.refs import Registry as RegistryName
    from cip.registry.snapshot import registry_snapshot

    try:
        registry = RegistryName.parse(name)
    except ValueError as exc:
        raise UsageError(f"--snapshot={name}: {exc}") from exc
    async with pool:
        return await registry_snapshot(
            pool, registry, minimal=minimal, only_tag=only_tag, concurrency=concurrency
        )
