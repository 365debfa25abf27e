"""`cip replicate-signatures`: merge what is attached on each primary into its mirrors."""

from __future__ import annotations

import sys
from datetime import timedelta

import click

from cip.cli.handling import handle_cip_errors, print_diagnostics
from cip.cli.kpromo import KpromoCommand
from cip.cli.loop import run_coroutine
from cip.cli.options import (
    manifest_options,
    network_options,
    output_option,
    retry_policy,
    selection_options,
)
from cip.cli.run import credential_store
from cip.errors import ExitCode
from cip.plan.edges import EdgeGroup
from cip.plan.planner import SigningPolicy
from cip.promote.pipeline import Selection, load_and_validate, request_table, select
from cip.promote.replicate import ReplicationResult, replicate_attached
from cip.registry.pool import RegistryPool
from cip.report.signatures import replication_json, replication_text
from cip.transport.ratelimit import RateLimitConfig, RateLimiter
from cip.transport.settings import NetworkOptions

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
    insecure: tuple[str, ...],
    ca_file: str | None,
    authfile: str | None,
    concurrency: int,
    rate_limits: tuple[str, ...],
    host_concurrency: tuple[str, ...],
    retry_timeout: timedelta,
    retry_max_backoff: timedelta,
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
    pool = RegistryPool(
        options=NetworkOptions.from_environment(
            insecure_registries=frozenset(insecure), ca_file=ca_file
        ),
        limiter=RateLimiter(RateLimitConfig.parse(rate_limits, host_concurrency)),
        credentials=credential_store(validated.manifests, authfile),
        retry=retry_policy(retry_timeout, retry_max_backoff),
    )
    policy = SigningPolicy(primary=primary_registry)
    result = run_coroutine(_replicate(groups, pool, policy, confirm, max_signature_copies))
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
) -> ReplicationResult:
    async with pool:
        return await replicate_attached(
            groups, pool, policy, confirm=confirm, max_copies=max_copies
        )
