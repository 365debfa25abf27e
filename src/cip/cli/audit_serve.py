"""`cip audit serve`: the auditor as a service, its flags and their wiring.

Flags become a `Service` of `audit/` (receivers, push authentication, manifests from files or
from git, periodic reconcile) rendered by `report/audit.py`, served by uvicorn on a socket
bound here. Decisions go to stdout, one JSON line each; operator logs go to stderr.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from cip.cli.handling import handle_cip_errors
from cip.cli.kpromo import KpromoCommand
from cip.cli.logs import LOG_LEVELS, ROOT_LOGGER, log_level_option
from cip.cli.network import NetworkFlags
from cip.cli.options import manifest_options, network_options
from cip.cli.params import GoDuration
from cip.errors import UsageError

if TYPE_CHECKING:
    # Imported where used: `cip --help` never loads the auditor or its libraries.
    from cip.audit.judge import Auditor
    from cip.audit.pushauth import PushVerifier
    from cip.audit.refresh import ManifestsInUse
    from cip.audit.service import AuditService
    from cip.promote.pipeline import ValidatedManifests
    from cip.registry.pool import RegistryPool

log = logging.getLogger(__name__)

DEFAULT_PORT = 8080  # Cloud Run's default, as upstream's auditor used
AUDIT_EXTRA = "pip install 'container-image-promoter[audit]'"
# audit.pushauth's default, written here too so --help does not load google-auth.
GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"

SERVE_RETRY_TIMEOUT = timedelta(seconds=10)  # Pub/Sub redelivers; a push has a deadline

SERVE_HELP = """Judge every change to the production registries against the manifests.

\b
Routes:
  POST /pubsub        Pub/Sub pushes of the `gcr` topic (GCR, Artifact Registry),
                      with Google's OIDC token (--pubsub-auth=oidc, the default)
  POST /distribution  Distribution notifications (bearer token; ?registry=HOST
                      names the registry, else the event's request.host)
  POST /refresh       fetch the manifests from git now (same bearer token)
  GET  /healthz       the manifests in use, GET /metrics (Prometheus)

\b
Each event gets one verdict (verified, rejected, error), in the POST's answer
and as one JSON line on stdout. Rejections answer 200, errors 500 (redelivered).
SIGTERM drains requests in flight, then exits 0. A registry that fails is retried
for 10s unless --retry-timeout says otherwise: the sender redelivers, and a push
must be answered before its acknowledgement deadline.

\b
Example:
  cip audit serve --manifests-git=https://github.com/kubernetes/k8s.io \\
      --manifests-path=registry.k8s.io --host=0.0.0.0 \\
      --pubsub-audience=https://auditor.example/pubsub \\
      --pubsub-allowed-email=pusher@PROJECT.iam.gserviceaccount.com --reconcile=1h
"""


@dataclass(frozen=True)
class GitFlags:
    url: str
    branch: str | None
    path: str
    refresh: timedelta


def _refuse_unless(condition: bool, flags: dict[str, bool], needs: str) -> None:
    """Refuse flags given on the command line that only mean something with `needs`."""
    given = [name for name, present in flags.items() if present]
    if given and not condition:
        raise click.UsageError(f"{', '.join(given)}: only with {needs}")


def _given(ctx: click.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def _verifier(
    auth: str, audience: str | None, emails: tuple[str, ...], certs_url: str
) -> PushVerifier | None:
    if auth == "none":
        return None
    if not audience:
        raise click.UsageError(
            "--pubsub-audience is required with --pubsub-auth=oidc (the default): the push "
            "subscription's --push-auth-token-audience, or the service's URL"
        )
    if not emails:
        raise click.UsageError(
            "--pubsub-allowed-email is required with --pubsub-auth=oidc: the service account "
            "of the push subscription (--push-auth-service-account); any Google account can "
            "sign a token for any audience"
        )
    from cip.audit.pushauth import PushVerifier, google_request

    return PushVerifier(audience, frozenset(emails), certs_url, google_request())


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


@click.command("serve", cls=KpromoCommand, help=SERVE_HELP)
@manifest_options
@click.option(
    "--manifests-git",
    metavar="URL",
    help="Follow the manifests in this git repository (instead of --manifest or "
    "--thin-manifest-dir); git's credential helpers and SSH keys apply.",
)
@click.option(
    "--manifests-branch", metavar="BRANCH", help="Its branch. [default: the remote's HEAD]"
)
@click.option(
    "--manifests-path",
    metavar="PATH",
    default=".",
    show_default=True,
    help="In the repository: a thin manifest folder, or a plain manifest file.",
)
@click.option(
    "--refresh",
    type=GoDuration(),
    default="5m",
    show_default=True,
    help="Fetch the branch every DURATION (0: only on POST /refresh).",
)
@network_options
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(1, 65535), help="Port to listen on. [default: $PORT, else 8080]"
)
@click.option(
    "--pubsub-auth",
    type=click.Choice(["oidc", "none"]),
    default="oidc",
    show_default=True,
    help="How /pubsub authenticates pushes: Google's OIDC token, or none (only behind "
    "something that authenticates, such as Cloud Run IAM).",
)
@click.option(
    "--pubsub-audience",
    metavar="AUD",
    help="The token's audience (the subscription's --push-auth-token-audience).",
)
@click.option(
    "--pubsub-allowed-email",
    "pubsub_emails",
    multiple=True,
    metavar="EMAIL",
    help="A service account allowed to push (the subscription's "
    "--push-auth-service-account). Repeatable.",
)
@click.option(
    "--google-certs-url",
    metavar="URL",
    default=GOOGLE_CERTS_URL,
    show_default=True,
    help="Where Google's token-signing certificates are.",
)
@click.option(
    "--distribution-token",
    envvar="CIP_AUDIT_DISTRIBUTION_TOKEN",
    show_envvar=True,
    metavar="TOKEN",
    help="Bearer token /distribution and /refresh require (the endpoint's Authorization "
    "header). Without it, both are off.",
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
def serve_command(**flags: Any) -> None:
    ctx = click.get_current_context()
    git: GitFlags | None = None
    _refuse_unless(
        flags["manifests_git"] is not None,
        {f"--{n}": _given(ctx, n.replace("-", "_")) for n in ("manifests-branch", "manifests-path", "refresh")},
        "--manifests-git",
    )  # fmt: skip
    if flags["manifests_git"] is not None:
        if flags["manifests"] or flags["thin_dirs"]:
            raise click.UsageError(
                "--manifests-git replaces --manifest and --thin-manifest-dir: give one source"
            )
        git = GitFlags(
            flags["manifests_git"], flags["manifests_branch"], flags["manifests_path"], flags["refresh"]
        )  # fmt: skip
    _refuse_unless(
        flags["pubsub_auth"] == "oidc",
        {f"--{n}": _given(ctx, n.replace("-", "_")) for n in ("pubsub-audience", "google-certs-url")}
        | {"--pubsub-allowed-email": bool(flags["pubsub_emails"])},
        "--pubsub-auth=oidc",
    )  # fmt: skip
    reconcile_every: timedelta | None = flags["reconcile_every"]
    if reconcile_every is not None and reconcile_every <= timedelta(0):
        raise click.UsageError("--reconcile: must be longer than 0")
    token: str | None = flags["distribution_token"]
    if token is not None and not token.strip():
        raise click.UsageError("--distribution-token is empty")
    try:
        import uvicorn

        from cip.audit.service import AuditService  # noqa: F401 (the extra's libraries)
    except ImportError as error:
        raise UsageError(f"cip audit serve needs {error.name}: {AUDIT_EXTRA}") from None
    verifier = _verifier(
        flags["pubsub_auth"],
        flags["pubsub_audience"],
        flags["pubsub_emails"],
        flags["google_certs_url"],
    )
    port = flags["port"] if flags["port"] is not None else _default_port()
    workdir = Path(tempfile.mkdtemp(prefix="cip-audit-manifests-")) if git else None
    try:
        _serve(flags, git, workdir, verifier, port, uvicorn)
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)


def _serve(
    flags: dict[str, Any],
    git: GitFlags | None,
    workdir: Path | None,
    verifier: PushVerifier | None,
    port: int,
    uvicorn: Any,
) -> None:
    from cip.audit.metrics import AuditMetrics
    from cip.audit.parents import IndexCache
    from cip.audit.reconcile import ReconcileResult, reconcile
    from cip.audit.refresh import GitManifests, ManifestSet, ManifestsInUse
    from cip.audit.service import AuditService
    from cip.cli.audit import _auditor, _load
    from cip.report.audit import AuditRenderer

    network: NetworkFlags = flags["network"]
    if click.get_current_context().get_parameter_source("retry_timeout") is (
        click.core.ParameterSource.DEFAULT
    ):
        network = replace(network, retry_timeout=SERVE_RETRY_TIMEOUT)
    concurrency = network.concurrency
    cache = IndexCache()
    metrics = AuditMetrics()
    manifests: ManifestsInUse
    if git is None:
        validated = _load(flags["manifests"], flags["thin_dirs"])
        listener = _listen(flags["host"], port)
        pool = network.pool(validated.manifests)
        auditor = _auditor(validated, pool, concurrency, flags["allow_deletions"], cache)
        manifests = ManifestsInUse(ManifestSet(auditor, None, time.time()))
    else:
        from cip.audit.gitsource import GitSource

        assert workdir is not None
        # Credentials for a manifest's `service-account` are those of the first commit.
        holder: list[RegistryPool] = []

        def build(validated: ValidatedManifests) -> Auditor:
            if not holder:
                holder.append(network.pool(validated.manifests))
            return _auditor(validated, holder[0], concurrency, flags["allow_deletions"], cache)

        manifests = GitManifests(GitSource(git.url, git.branch, git.path, workdir), build)
        asyncio.run(manifests.start())
        listener = _listen(flags["host"], port)
        pool = holder[0]
        metrics.follow_git()
        assert manifests.last_refresh is not None
        metrics.refreshed(manifests.last_refresh)

    async def reconcile_with(auditor: Auditor) -> ReconcileResult:
        return await reconcile(auditor, pool, concurrency=concurrency)

    def emit(line: str) -> None:
        click.echo(line)  # stdout: the service's report, one JSON line per decision

    reconcile_every: timedelta | None = flags["reconcile_every"]
    service = AuditService(
        manifests,
        metrics,
        AuditRenderer(),
        emit,
        distribution_token=flags["distribution_token"],
        push_verifier=verifier,
        reconcile=reconcile_with if reconcile_every is not None else None,
        reconcile_every=reconcile_every.total_seconds() if reconcile_every else None,
        refresh_every=git.refresh.total_seconds() if git is not None else None,
        on_close=pool.aclose,
    )
    _run(service, listener, flags["drain_timeout"], uvicorn, manifests)


def _run(
    service: AuditService,
    listener: socket.socket,
    drain_timeout: timedelta,
    uvicorn: Any,
    manifests: ManifestsInUse,
) -> None:
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
        "cip audit: listening on http://%s:%d (%d destination repositories%s)",
        where[0],
        where[1],
        len(manifests.current.auditor.promises.repositories),
        f", manifests at commit {manifests.current.commit}" if manifests.current.commit else "",
    )
    server.run(sockets=[listener])
    if not server.started:
        raise UsageError("the auditor did not start (see the messages above)")
    log.info("cip audit: stopped by %s, requests drained", stopped_by[0] if stopped_by else "exit")
