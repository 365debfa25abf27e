"""The vulnerability gate's flags, shared by `cip check` and `cip run`, and the gate they make.

The flags reach the command as one `VulnFlags` value (keyword `vuln`), so both commands spell
and check them the same way. Every flag is either used or refused: a source or policy flag
without `--vuln-severity-threshold` is a usage error, and so is a threshold with no source of
findings (every image would be held back as unscanned).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import click

from cip.errors import UsageError
from cip.vuln.model import Severity

if TYPE_CHECKING:
    # The gate's machinery loads only when a threshold is given: start-up of every run and
    # of --parse-only would otherwise pay for it.
    from cip.transport.settings import NetworkOptions
    from cip.vuln.gate import VulnGate

F = TypeVar("F", bound=Callable[..., Any])
SCALE = "0 off, 1 MINIMAL, 2 LOW, 3 MEDIUM, 4 HIGH, 5 CRITICAL"


@dataclass(frozen=True)
class VulnFlags:
    vuln_severity_threshold: Severity | None = None
    vuln_include_unfixed: bool = False
    vuln_allowlist: str | None = None
    on_missing_report: Literal["fail", "warn"] | None = None
    vuln_reports: tuple[str, ...] = ()
    scanner: str | None = None
    trivy: str | None = None
    trivy_db_repository: str | None = None
    trivy_offline: bool = False
    verify_key: str | None = None

    def given(self) -> list[str]:
        """The flags given besides the threshold, as the user wrote them."""
        names = {
            "vuln_include_unfixed": "--vuln-include-unfixed",
            "vuln_allowlist": "--vuln-allowlist",
            "on_missing_report": "--on-missing-report",
            "vuln_reports": "--vuln-report",
            "scanner": "--scanner",
            "trivy": "--trivy",
            "trivy_db_repository": "--trivy-db-repository",
            "trivy_offline": "--trivy-offline",
            "verify_key": "--verify-key",
        }
        return [
            flag for name, flag in names.items() if getattr(self, name) not in (None, False, ())
        ]


def _threshold(ctx: click.Context, param: click.Parameter, value: str | None) -> Severity | None:
    if value is None:
        return None
    found = Severity.parse(value)
    if found is None:
        raise click.BadParameter(f"{value!r} is not a severity ({SCALE}; names too)", ctx, param)
    return found


def vulnerability_options(func: F) -> F:
    """The gate's options; the command receives them as `vuln: VulnFlags`."""
    return _vulnerability_options(func, with_key=True)


def vulnerability_options_sharing_key(func: F) -> F:
    """The gate's options without `--verify-key`: `cip run` declares that flag once, for
    staging's verification and the gate's attestations alike, and fills `verify_key` in."""
    return _vulnerability_options(func, with_key=False)


def _vulnerability_options(func: F, *, with_key: bool) -> F:
    names = [f.name for f in fields(VulnFlags) if with_key or f.name != "verify_key"]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        flags = VulnFlags(**{name: kwargs.pop(name) for name in names})
        return func(*args, vuln=flags, **kwargs)

    options = [
        click.option(
            "--vuln-severity-threshold",
            metavar="N",
            callback=_threshold,
            help=f"Hold back images with a vulnerability at or above this severity ({SCALE}).",
        ),
        click.option(
            "--vuln-include-unfixed",
            is_flag=True,
            help="Count vulnerabilities without a known fix too (by default, as upstream, "
            "only fixable ones count).",
        ),
        click.option(
            "--vuln-allowlist",
            metavar="FILE",
            help="Vulnerabilities not to count, in Trivy's .trivyignore.yaml shape "
            "(vulnerabilities: [{id, statement, expired_at}]).",
        ),
        click.option(
            "--on-missing-report",
            type=click.Choice(["fail", "warn"]),
            default=None,
            help="An image no report, scan or attestation is about: fail (default) or warn.",
        ),
        click.option(
            "--vuln-report",
            "vuln_reports",
            multiple=True,
            metavar="DIR",
            help="A folder of reports (Trivy JSON, Grype JSON, SARIF, CycloneDX), each bound to "
            "the digest it names or, failing that, its file name sha256-<hex>.json. Repeatable.",
        ),
        click.option(
            "--scanner",
            type=click.Choice(["trivy"]),
            default=None,
            help="Scan each image with this scanner, found on PATH.",
        ),
        click.option("--trivy", metavar="PATH", help="Scan each image with the trivy at PATH."),
        click.option(
            "--trivy-db-repository",
            metavar="REPO",
            help="Where trivy downloads its database from (trivy's --db-repository).",
        ),
        click.option(
            "--trivy-offline",
            is_flag=True,
            help="Trivy uses the database it has and makes no network request for it "
            "(--skip-db-update --skip-java-db-update --offline-scan).",
        ),
    ]
    if with_key:
        options.append(
            click.option(
                "--verify-key",
                metavar="FILE",
                help="Read cosign vulnerability attestations (.att) signed by this public key "
                "(cosign.pub).",
            )
        )
    decorated: Callable[..., Any] = wrapper
    for option in reversed(options):
        decorated = option(decorated)
    return cast(F, decorated)


def vuln_gate(flags: VulnFlags, network: NetworkOptions) -> VulnGate | None:
    """The gate the flags ask for: None without a threshold, an inactive gate at 0."""
    threshold = flags.vuln_severity_threshold
    if threshold is None:
        given = flags.given()
        if given:
            raise UsageError(f"{', '.join(given)}: needs --vuln-severity-threshold ({SCALE})")
        return None
    from cip.trust.keys import load_public_key
    from cip.vuln.attestations import AttestationReader
    from cip.vuln.gate import Sources, VulnGate
    from cip.vuln.policy import Policy, load_allowlist
    from cip.vuln.reports import load_reports
    from cip.vuln.scanner import TrivyScanner, find_trivy

    if threshold is Severity.UNSPECIFIED:
        return VulnGate(Policy(Severity.UNSPECIFIED), Sources())  # 0: the gate is off
    trivy = find_trivy(flags.trivy, flags.scanner)
    if trivy is None and (flags.trivy_db_repository or flags.trivy_offline):
        raise UsageError(
            "--trivy-db-repository and --trivy-offline need --trivy or --scanner trivy"
        )
    if flags.trivy_db_repository and flags.trivy_offline:
        raise UsageError("--trivy-offline downloads nothing: drop --trivy-db-repository")
    sources = Sources(
        reports=load_reports(flags.vuln_reports) if flags.vuln_reports else None,
        scanner=(
            TrivyScanner(trivy, network, flags.trivy_db_repository, flags.trivy_offline)
            if trivy is not None
            else None
        ),
        attestations=AttestationReader(load_public_key(flags.verify_key))
        if flags.verify_key
        else None,
    )
    if not sources.any:
        raise UsageError(
            "--vuln-severity-threshold needs a source of findings: --vuln-report DIR, "
            "--trivy PATH or --scanner trivy, or --verify-key FILE for attestations"
        )
    policy = Policy(
        threshold,
        include_unfixed=flags.vuln_include_unfixed,
        allowlist=load_allowlist(flags.vuln_allowlist) if flags.vuln_allowlist else None,
        on_missing=flags.on_missing_report or "fail",
    )
    return VulnGate(policy, sources)
