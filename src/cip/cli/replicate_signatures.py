"""`cip replicate-signatures`: merge what is attached on each primary into its mirrors."""

from __future__ import annotations

import sys

import click

from cip.cli.handling import handle_cip_errors, print_diagnostics
from cip.cli.interrupts import until_signalled
from cip.cli.kpromo import KpromoCommand
from cip.cli.loop import run_coroutine
from cip.cli.network import NetworkFlags
from cip.cli.options import (
    manifest_options,
    network_options,
    output_option,
    selection_options,
)
from cip.errors import ExitCode
from cip.plan.edges import EdgeGroup
from cip.plan.planner import SigningPolicy
from cip.promote.pipeline import Selection, load_and_validate, request_table, select
from cip.promote.replicate import ReplicationResult, replicate_attached
from cip.promote.tally import Tally
from cip.registry.pool import RegistryPool
from cip.report.signatures import replication_json, replication_text

HELP = """Merge every signature (.sig), attestation (.att), SBOM (.sbom) and referrers index
on each image's primary registry into its other destinations, where a layer or descriptor is
missing (a dry run unless --confirm). Reads one tag listing per repository and registry.

\b
Exit codes: 0 ok; 1 a tag could not be read or merged; 2 invalid manifests or usage.
"""


@click.command("replicate-signatures", cls=KpromoCommand, help=HELP)
@manifest_options
@click.option("--confirm", is_flag=True, help="Write to the mirrors.")
@click.option("--primary-registry", metavar="REG",
              help="Where signatures are read (default: each manifest's first destination).")  # fmt: skip
@click.option("--max-signature-copies", default=50, show_default=True,
              type=click.IntRange(1, 10_000), help="Tags merged at once.")  # fmt: skip
@output_option("text or json (default text).")
@selection_options
@network_options
@handle_cip_errors
def replicate_signatures_command(
    manifests: tuple[str, ...],
    thin_dirs: tuple[str, ...],
    confirm: bool,
    primary_registry: str | None,
    max_signature_copies: int,
    output: str | None,
    diff_base: str | None,
    manifest_diff_since: str | None,
    use_prow_manifest_diff: bool,
    images: tuple[str, ...],
    network: NetworkFlags,
) -> None:
    output = output or "text"
    if output not in ("text", "json"):
        raise click.UsageError(f"--output={output}: choose text or json")
    validated = load_and_validate(list(manifests), list(thin_dirs))
    print_diagnostics(validated.warnings)
    if primary_registry is not None:
        names = {spec.name for m in validated.manifests for spec in m.destinations}
        if primary_registry not in names:
            raise click.UsageError(
                f"--primary-registry={primary_registry} is not a destination of any manifest"
            )
    groups = select(
        validated, Selection(diff_base, manifest_diff_since, use_prow_manifest_diff, images)
    )
    pool = network.pool(validated.manifests)
    policy = SigningPolicy(primary=primary_registry)
    tally = Tally("images", "replicated")
    result = run_coroutine(
        until_signalled(
            _replicate(groups, pool, policy, confirm, max_signature_copies, network, tally), tally
        )
    )
    if output == "json":
        click.echo(
            replication_json(
                result,
                dry_run=not confirm,
                warnings=validated.warnings,
                requests=request_table(pool),
            )
        )
    else:
        click.echo(replication_text(result, dry_run=not confirm))
    if result.failures:
        sys.exit(int(ExitCode.FAILED))


async def _replicate(
    groups: list[EdgeGroup],
    pool: RegistryPool,
    policy: SigningPolicy,
    confirm: bool,
    max_copies: int,
    network: NetworkFlags,
    tally: Tally,
) -> ReplicationResult:
    async with pool:
        return await replicate_attached(
            groups,
            pool,
            policy,
            confirm=confirm,
            max_copies=max_copies,
            concurrency=network.concurrency,
            tally=tally,
        )
