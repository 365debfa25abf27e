"""`cip check`: pre-promotion checks of a manifest change, reported where reviewers look.

The command wires flags to `checks/` (which decides) and `report/` (which renders): text,
JSON, markdown or SARIF on stdout; in GitHub Actions also annotations on stderr and the
markdown appended to `$GITHUB_STEP_SUMMARY`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace

import click

from cip.checks.catalog import CHECKS, CheckReport, choose, run_checks
from cip.checks.change import ChangeSpec, read_change
from cip.checks.context import DEFAULT_MAX_IMAGE_SIZE, CheckContext, CheckOptions
from cip.checks.findings import Check, CheckResult
from cip.cli.handling import handle_cip_errors
from cip.cli.interrupts import until_signalled
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
)
from cip.cli.signing import KeylessFlags
from cip.cli.verification import VerificationFlags, staging_policy, verification_options
from cip.cli.vuln import VulnFlags, vuln_gate, vulnerability_options_sharing_key
from cip.promote.pipeline import request_table
from cip.promote.tally import Tally
from cip.report.checks import check_markdown, check_text
from cip.report.document import check_json
from cip.report.github import workflow_commands
from cip.report.sarif import check_sarif

OUTPUTS = ("text", "json", "markdown", "sarif")
RENDERERS = {
    "text": check_text,
    "json": check_json,
    "markdown": check_markdown,
    "sarif": check_sarif,
}

CHECK_HELP = """Check a manifest change before it is merged (a presubmit).

\b
Compares the manifests of the working tree (or of --head REF) with those of a
base commit, and runs every check on what the change adds or changes: the
manifests load, no tag maps to two digests, no tag moves in production, nothing
promoted disappears, added digests are in staging and not too large, (with
--vuln-severity-threshold) no changed digest is vulnerable, and (with
--verify-key or --certificate-identity) staging's signatures and provenance hold
as cip run will verify them.

\b
Examples:
  cip check --thin-manifest-dir=. --diff-base=origin/main
  cip check --thin-manifest-dir=. --diff-base=origin/main --head=HEAD --output=markdown
  cip check --manifest=promoter.yaml --base=HEAD~1 --checks=overlap,removal
  cip check --thin-manifest-dir=. --base=origin/main --vuln-severity-threshold=HIGH --vuln-report=reports/
  cip check --thin-manifest-dir=. --base=origin/main --verify-key=cosign.pub --require-signature
  cip check --list

\b
Exit codes: 0 every check passed (warnings allowed); 1 a check failed; 2 bad
flags or git refs (a ref that is not there: fetch more history).
"""


def _ids(values: tuple[str, ...]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _list_text(checks: tuple[Check, ...]) -> str:
    width = max(len(check.id) for check in checks)
    return "\n".join(f"{check.id:<{width}}  {check.description}" for check in checks)


@click.command("check", cls=KpromoCommand, help=CHECK_HELP)
@manifest_options
@selection_options
@click.option("--head", metavar="REF", help="Check this commit instead of the working tree.")
@click.option("--checks", "only", multiple=True, metavar="ID[,ID…]", help="Run only these checks.")
@click.option(
    "--skip-checks", "skip", multiple=True, metavar="ID[,ID…]", help="Do not run these checks."
)
@click.option("--list", "list_checks", is_flag=True, help="List the checks, then stop.")
@click.option(
    "--forbid-removal",
    is_flag=True,
    help="A digest or tag removed from the manifests is an error, not a warning.",
)
@max_image_size_option(
    DEFAULT_MAX_IMAGE_SIZE,
    "The size check's limit: an added image's compressed size (config and layers, "
    "all platforms) in mebibytes.",
)
@vulnerability_options_sharing_key
@verification_options
@click.option(
    "--sigstore-trust-config",
    metavar="FILE",
    help="With --certificate-identity: the sigstore instance to trust (a client trust config "
    "JSON). Default: the public-good instance.",
)
@output_option("text (default), json, markdown or sarif.")
@network_options
@log_level_option
@handle_cip_errors
def check_command(
    manifests: tuple[str, ...],
    thin_dirs: tuple[str, ...],
    diff_base: str | None,
    manifest_diff_since: str | None,
    use_prow_manifest_diff: bool,
    images: tuple[str, ...],
    head: str | None,
    only: tuple[str, ...],
    skip: tuple[str, ...],
    list_checks: bool,
    forbid_removal: bool,
    max_image_size: int,
    output: str | None,
    network: NetworkFlags,
    vuln: VulnFlags,
    verification: VerificationFlags,
    sigstore_trust_config: str | None,
) -> None:
    output = output or "text"
    if output not in OUTPUTS:
        raise click.UsageError(f"--output={output}: choose {', '.join(OUTPUTS)}")
    if list_checks:
        if output != "text":
            raise click.UsageError("--list prints text; drop --output")
        click.echo(_list_text(CHECKS))
        return
    bases = sum(x is not None for x in (diff_base, manifest_diff_since)) + use_prow_manifest_diff
    if bases != 1:
        raise click.UsageError(
            "cip check compares with a base: give one of --diff-base (--base), "
            "--manifest-diff-since or --use-prow-manifest-diff"
        )
    chosen = choose(_ids(only), _ids(skip))
    network.limits()  # a malformed --rate-limit is refused before git is read
    # One --verify-key: staging's signatures and provenance, and (with a threshold) the gate's
    # vulnerability attestations.
    shared_key = verification.verify_key if vuln.vuln_severity_threshold is not None else None
    gate = vuln_gate(replace(vuln, verify_key=shared_key), network.options())
    keyless = verification.certificate_identity or verification.certificate_identity_regexp
    if sigstore_trust_config is not None and not keyless:
        raise click.UsageError(
            "--sigstore-trust-config says whom keyless signatures are trusted from: it needs "
            "--certificate-identity or --certificate-identity-regexp"
        )
    staging = staging_policy(verification, KeylessFlags(trust_config=sigstore_trust_config), None)
    spec = ChangeSpec(
        manifests, thin_dirs, diff_base, manifest_diff_since, use_prow_manifest_diff, head, images
    )
    change = read_change(spec, os.environ)
    pool = network.pool(change.loaded.manifests)
    options = CheckOptions(forbid_removal, max_image_size, network.concurrency, gate, staging)
    tally = Tally("checks")
    results = run_coroutine(
        until_signalled(_run(CheckContext(change, pool, options), chosen, tally), tally)
    )
    report = CheckReport(change, results, request_table(pool))
    click.echo(RENDERERS[output](report), nl=output != "markdown")
    if os.environ.get("GITHUB_ACTIONS") == "true":
        _github(report)
    sys.exit(int(report.exit_code))


async def _run(context: CheckContext, chosen: list[Check], tally: Tally) -> list[CheckResult]:
    async with context.pool:
        return await run_checks(context, chosen, tally)


def _github(report: CheckReport) -> None:
    """In GitHub Actions: annotations on the changed lines, and the markdown in the job's
    summary page (appended: other steps write there too)."""
    for line in workflow_commands(report):
        click.echo(line, err=True)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as stream:
            stream.write(check_markdown(report) + "\n")
