"""`cip audit serve` and `cip audit reconcile`: the auditor of production registries.

The command wires flags to `audit/` (rules, receivers, reconcile) and `report/` (answers, log
lines, the reconcile report). Decisions go to stdout, one JSON line each (they are the
service's report); operator logs go to stderr.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

import click

from cip.cli.handling import handle_cip_errors, print_diagnostics
from cip.cli.kpromo import KpromoCommand
from cip.cli.logs import log_level_option
from cip.cli.loop import run_coroutine
from cip.cli.options import manifest_options, network_options, output_option
from cip.errors import ExitCode

if TYPE_CHECKING:
    # Imported where used: `cip --help` and the other commands never load the auditor, the
    # HTTP stack or the service's libraries.
    from cip.audit.judge import Auditor
    from cip.audit.parents import IndexCache
    from cip.cli.network import NetworkFlags
    from cip.promote.pipeline import ValidatedManifests
    from cip.registry.pool import RegistryPool

log = logging.getLogger(__name__)

RECONCILE_HELP = """Judge every tag and digest the destination registries hold, once.

Lists every repository under each destination registry (its catalog), one tag
listing each, and judges what is there with the auditor's rules: what events
would have said, for when events were lost. Exit 1 when anything is rejected
or could not be read, 0 when all is verified.
"""


@click.group("audit")
def audit_group() -> None:
    """The auditor: judge changes to production registries against the manifests."""


def _auditor(
    validated: ValidatedManifests,
    pool: RegistryPool,
    concurrency: int,
    allow_deletions: bool,
    cache: IndexCache | None = None,
) -> Auditor:
    """The rules over one set of manifests; sets that follow each other share `cache`
    (an index's children never change, whatever the manifests say)."""
    from cip.audit.judge import Auditor
    from cip.audit.parents import IndexCache, ManifestReader
    from cip.audit.promises import Promises

    promises = Promises.from_edges(validated.groups)
    reader = ManifestReader(pool, promises, cache or IndexCache(), concurrency=concurrency)
    return Auditor(promises, reader, allow_deletions=allow_deletions)


def _load(manifests: tuple[str, ...], thin_dirs: tuple[str, ...]) -> ValidatedManifests:
    from cip.promote.pipeline import load_and_validate

    validated = load_and_validate(list(manifests), list(thin_dirs))
    print_diagnostics(validated.warnings)
    return validated


@audit_group.command("reconcile", cls=KpromoCommand, help=RECONCILE_HELP)
@manifest_options
@network_options
@output_option("text or json (default text).")
@log_level_option
@handle_cip_errors
def reconcile_command(
    manifests: tuple[str, ...],
    thin_dirs: tuple[str, ...],
    network: NetworkFlags,
    output: str | None,
) -> None:
    from cip.audit.reconcile import ReconcileResult, reconcile
    from cip.cli.interrupts import until_signalled
    from cip.promote.tally import Tally
    from cip.report.audit import reconcile_text
    from cip.report.document import reconcile_document

    output = output or "text"
    if output not in ("text", "json"):
        raise click.UsageError(f"--output={output} is not available; choose text or json")
    validated = _load(manifests, thin_dirs)
    pool = network.pool(validated.manifests)

    async def go() -> ReconcileResult:
        async with pool:
            auditor = _auditor(validated, pool, network.concurrency, allow_deletions=False)
            return await reconcile(auditor, pool, concurrency=network.concurrency, tally=tally)

    tally = Tally("registries", "judged")
    result = run_coroutine(until_signalled(go(), tally))
    if output == "json":
        click.echo(reconcile_document(result, warnings=validated.warnings))
    else:
        click.echo(reconcile_text(result))
    if result.problems:
        sys.exit(int(ExitCode.FAILED))


# The serve command, its flags and the service's wiring (cli/audit_serve.py) are added to the
# group last: that module imports the helpers above.
from cip.cli.audit_serve import serve_command  # noqa: E402

audit_group.add_command(serve_command)
