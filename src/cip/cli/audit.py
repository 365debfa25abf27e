"""`cip audit serve` and `cip audit reconcile`: the auditor of production registries.

The command wires flags to `audit/` (rules, receivers, reconcile) and `report/` (answers, log
lines, the reconcile report). Decisions go to stdout, one JSON line each (they are the
service's report); operator logs go to stderr.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
from datetime import timedelta
from types import FrameType
from typing import TYPE_CHECKING

import click

from cip.cli.handling import handle_cip_errors, print_diagnostics
from cip.cli.kpromo import KpromoCommand
from cip.cli.logs import LOG_LEVELS, ROOT_LOGGER, log_level_option
from cip.cli.options import manifest_options, network_options, output_option
from cip.cli.params import GoDuration
from cip.errors import ExitCode, UsageError

if TYPE_CHECKING:
    # Imported where used: `cip --help` and the other commands never load the auditor, the
    # HTTP stack or the service's libraries.
    from cip.audit.judge import Auditor
    from cip.promote.pipeline import ValidatedManifests
    from cip.registry.pool import RegistryPool

log = logging.getLogger(__name__)

DEFAULT_PORT = 8080  # Cloud Run's default, as upstream's auditor used
AUDIT_EXTRA = "pip install 'container-image-promoter[audit]'"

SERVE_HELP = """Judge every change to the production registries against the manifests.

\b
Receivers:
  POST /pubsub        Pub/Sub pushes of the `gcr` topic (GCR, Artifact Registry)
  POST /distribution  Distribution notifications (bearer token; ?registry=HOST
                      names the registry, else the event's request.host)
  GET  /healthz, GET /metrics (Prometheus)

\b
Each event gets one verdict (verified, rejected, error), in the POST's answer
and as one JSON line on stdout. Rejections answer 200, errors 500 (redelivered).
SIGTERM drains requests in flight, then exits 0.

\b
Example:
  cip audit serve --thin-manifest-dir=k8s.io/registry.k8s.io --host=0.0.0.0 \\
      --pubsub-auth=none --reconcile=1h
"""

RECONCILE_HELP = """Judge every tag and digest the destination registries hold, once.

Lists every repository under each destination registry (its catalog), one tag
listing each, and judges what is there with the auditor's rules: what events
would have said, for when events were lost. Exit 1 when anything is rejected
or could not be read, 0 when all is verified.
"""


@click.group("audit")
def audit_group() -> None:
    """The auditor: judge changes to production registries against the manifests."""


def _pool(
    validated: ValidatedManifests,
    insecure: tuple[str, ...],
    ca_file: str | None,
    authfile: str | None,
    rate_limits: tuple[str, ...],
    host_concurrency: tuple[str, ...],
) -> RegistryPool:
    """The registries' clients, set up from the network flags as `cip run` sets them up."""
    from cip.cli.run import credential_store
    from cip.registry.pool import RegistryPool
    from cip.transport.ratelimit import RateLimitConfig, RateLimiter
    from cip.transport.settings import NetworkOptions

    network = NetworkOptions.from_environment(
        insecure_registries=frozenset(insecure), ca_file=ca_file
    )
    return RegistryPool(
        options=network,
        limiter=RateLimiter(RateLimitConfig.parse(rate_limits, host_concurrency)),
        credentials=credential_store(validated.manifests, authfile),
    )


def _auditor(
    validated: ValidatedManifests, pool: RegistryPool, concurrency: int, allow_deletions: bool
) -> Auditor:
    from cip.audit.judge import Auditor
    from cip.audit.parents import IndexCache, ManifestReader
    from cip.audit.promises import Promises

    promises = Promises.from_edges(validated.groups)
    reader = ManifestReader(pool, promises, IndexCache(), concurrency=concurrency)
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
    insecure: tuple[str, ...],
    ca_file: str | None,
    authfile: str | None,
    concurrency: int,
    rate_limits: tuple[str, ...],
    host_concurrency: tuple[str, ...],
    output: str | None,
) -> None:
    from cip.audit.reconcile import ReconcileResult, reconcile
    from cip.report.audit import reconcile_text
    from cip.report.document import reconcile_document

    output = output or "text"
    if output not in ("text", "json"):
        raise click.UsageError(f"--output={output} is not available; choose text or json")
    validated = _load(manifests, thin_dirs)
    pool = _pool(validated, insecure, ca_file, authfile, rate_limits, host_concurrency)

    async def go() -> ReconcileResult:
        async with pool:
            auditor = _auditor(validated, pool, concurrency, allow_deletions=False)
            return await reconcile(auditor, pool, concurrency=concurrency)

    result = asyncio.run(go())
    if output == "json":
        click.echo(reconcile_document(result, warnings=validated.warnings))
    else:
        click.echo(reconcile_text(result))
    if result.problems:
        sys.exit(int(ExitCode.FAILED))


def _default_port() -> int:
    text = os.environ.get("PORT")
    if not text:
        return DEFAULT_PORT
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise UsageError(f"PORT={text!r} is not a port number (1-65535)")
    return int(text)


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so a taken port is a usage error naming it."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family)
    except OSError as error:
        raise UsageError(
            f"cannot listen on --host={host} --port={port}: {error.strerror or error}"
        ) from None


@audit_group.command("serve", cls=KpromoCommand, help=SERVE_HELP)
@manifest_options
@network_options
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(1, 65535), help="Port to listen on. [default: $PORT, else 8080]"
)
@click.option(
    "--pubsub-auth",
    type=click.Choice(["none", "oidc"]),
    help="How /pubsub authenticates pushes. Required: 'none' (put the service behind "
    "an authenticating proxy or Cloud Run IAM); 'oidc' is not supported yet.",
)
@click.option(
    "--distribution-token",
    envvar="CIP_AUDIT_DISTRIBUTION_TOKEN",
    show_envvar=True,
    metavar="TOKEN",
    help="Bearer token /distribution requires (the endpoint's Authorization header). "
    "Without it, /distribution is off.",
)
@click.option(
    "--allow-deletions",
    is_flag=True,
    help="Verify a deletion when no manifest lists what was deleted (default: reject all).",
)
@click.option(
    "--reconcile",
    "reconcile_every",
    type=GoDuration(),
    help="Also reconcile at start-up and then every DURATION (e.g. 1h).",
)
@click.option(
    "--drain-timeout",
    type=GoDuration(),
    default="30s",
    show_default=True,
    help="On SIGTERM, how long requests in flight may take to finish.",
)
@log_level_option
@handle_cip_errors
def serve_command(
    manifests: tuple[str, ...],
    thin_dirs: tuple[str, ...],
    insecure: tuple[str, ...],
    ca_file: str | None,
    authfile: str | None,
    concurrency: int,
    rate_limits: tuple[str, ...],
    host_concurrency: tuple[str, ...],
    host: str,
    port: int | None,
    pubsub_auth: str | None,
    distribution_token: str | None,
    allow_deletions: bool,
    reconcile_every: timedelta | None,
    drain_timeout: timedelta,
) -> None:
    if pubsub_auth is None:
        raise click.UsageError(
            "--pubsub-auth=none is required: /pubsub does not authenticate Pub/Sub pushes "
            "yet, so say that it need not (restrict who can reach the service instead)"
        )
    if pubsub_auth == "oidc":
        raise click.UsageError("--pubsub-auth=oidc is not supported yet")
    if reconcile_every is not None and reconcile_every <= timedelta(0):
        raise click.UsageError("--reconcile: must be longer than 0")
    if distribution_token is not None and not distribution_token.strip():
        raise click.UsageError("--distribution-token is empty")
    try:
        import uvicorn

        from cip.audit.metrics import AuditMetrics
        from cip.audit.service import AuditService
    except ImportError as error:
        raise UsageError(f"cip audit serve needs {error.name}: {AUDIT_EXTRA}") from None
    from cip.audit.reconcile import ReconcileResult, reconcile
    from cip.report.audit import AuditRenderer

    port = port if port is not None else _default_port()
    validated = _load(manifests, thin_dirs)
    listener = _listen(host, port)
    pool = _pool(validated, insecure, ca_file, authfile, rate_limits, host_concurrency)
    auditor = _auditor(validated, pool, concurrency, allow_deletions)

    async def reconcile_once() -> ReconcileResult:
        return await reconcile(auditor, pool, concurrency=concurrency)

    def emit(line: str) -> None:
        click.echo(line)  # stdout: the service's report, one JSON line per decision

    service = AuditService(
        auditor,
        AuditMetrics(),
        AuditRenderer(),
        emit,
        distribution_token=distribution_token,
        reconcile=reconcile_once if reconcile_every is not None else None,
        reconcile_every=reconcile_every.total_seconds() if reconcile_every else None,
        on_close=pool.aclose,
    )
    level = logging.getLogger(ROOT_LOGGER).level
    config = uvicorn.Config(
        service.app(),
        log_level=next((n for n, v in LOG_LEVELS.items() if v == level), "info"),
        access_log=False,  # every decision has its own line already
        lifespan="on",
        timeout_graceful_shutdown=max(1, round(drain_timeout.total_seconds())),
    )
    server = uvicorn.Server(config)
    stopped_by: list[str] = []

    def note_signal(number: int, frame: FrameType | None) -> None:
        # uvicorn drains on SIGTERM/SIGINT, then raises the signal again to the handler that
        # was installed before it: this one, so a drained service exits 0.
        stopped_by.append(signal.Signals(number).name)

    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, note_signal)
    where = listener.getsockname()
    log.info(
        "cip audit: listening on http://%s:%d (%d destination repositories)",
        where[0],
        where[1],
        len(auditor.promises.repositories),
    )
    server.run(sockets=[listener])
    if not server.started:
        raise UsageError("the auditor did not start (see the messages above)")
    log.info("cip audit: stopped by %s, requests drained", stopped_by[0] if stopped_by else "exit")
