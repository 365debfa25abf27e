"""The auditor as an HTTP service (Starlette): receivers, health, metrics, periodic reconcile.

Routes: `POST /pubsub` (a Pub/Sub push, with Google's OIDC token unless auth is off),
`POST /distribution` (Distribution notifications, bearer token), `GET /healthz`,
`GET /metrics`, and `POST /refresh` (the manifests fetched from git now; the same bearer token
as /distribution). A request that fails authentication is answered 401 before its body is
read, counted, and logged in one line that never holds the token. Each POST answers one entry per event: 200 when
every verdict is final (a rejection is final: redelivering it would only repeat the alarm),
500 when one is an *error*, so the sender delivers it again. A message or event id already
judged finally is not judged again: redeliveries get the first answer and count once.

Each event is judged by one set of manifests, the one in use when it came; its log line names
that set's commit. Bodies and log lines are rendered by the caller's `Renderer` (`report/`):
verdicts stay data here.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cip.audit.events import RegistryEvent, parse_distribution, parse_pubsub
from cip.audit.judge import Auditor
from cip.audit.metrics import TOKEN_REFUSAL, AuditMetrics
from cip.audit.pushauth import PushRefused, PushVerifier
from cip.audit.reconcile import ReconcileResult
from cip.audit.refresh import ManifestSet, ManifestsInUse, RefreshOutcome, RefreshResult
from cip.audit.verdicts import Decision, Verdict
from cip.errors import CipError

log = logging.getLogger(__name__)

MAX_BODY = 4 * 1024 * 1024  # a GCR payload is ~200 bytes; Distribution batches a few events
JSON_TYPE = "application/json"
EventKey = tuple[str, str]


class Renderer(Protocol):
    """How answers and decision logs look; implemented in `report/`."""

    def answer(self, decisions: Sequence[Decision], ignored: int) -> bytes: ...

    def refusal(self, message: str) -> bytes: ...

    def decision_line(self, decision: Decision, commit: str | None) -> str: ...

    def reconcile_line(self, result: ReconcileResult) -> str: ...

    def health(self, manifests: ManifestsInUse) -> bytes: ...

    def refresh_answer(self, result: RefreshResult) -> bytes: ...


class JudgedOnce:
    """Each event id judged once: a redelivery waits for, or gets, the first final decision."""

    # Redeliveries come within minutes (Pub/Sub's acknowledgement deadline, Distribution's
    # backoff); ten thousand ids outlast that at any registry's push rate.
    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._done: OrderedDict[EventKey, Decision] = OrderedDict()
        self._running: dict[EventKey, asyncio.Task[Decision]] = {}

    async def judge(
        self, event: RegistryEvent, work: Callable[[RegistryEvent], Awaitable[Decision]]
    ) -> tuple[Decision, bool]:
        """The decision, and whether it is new (False for a redelivery)."""
        if event.id is None:
            return await work(event), True
        key = (event.source, event.id)
        done = self._done.get(key)
        if done is not None:
            self._done.move_to_end(key)
            return done, False
        running = self._running.get(key)
        if running is not None:
            return await asyncio.shield(running), False
        task = asyncio.ensure_future(work(event))
        self._running[key] = task
        try:
            decision = await asyncio.shield(task)
        finally:
            self._running.pop(key, None)
        if decision.final:
            self._done[key] = decision
            while len(self._done) > self.capacity:
                self._done.popitem(last=False)
        return decision, True


@dataclass
class AuditService:
    """Everything a request handler needs; `app()` builds the ASGI application."""

    manifests: ManifestsInUse
    metrics: AuditMetrics
    renderer: Renderer
    emit: Callable[[str], None]  # writes one decision log line
    distribution_token: str | None = None
    push_verifier: PushVerifier | None = None  # None: /pubsub takes pushes unauthenticated
    reconcile: Callable[[Auditor], Awaitable[ReconcileResult]] | None = None
    reconcile_every: float | None = None  # seconds
    refresh_every: float | None = None  # seconds; manifests from git only
    on_close: Callable[[], Awaitable[None]] | None = None
    once: JudgedOnce = field(default_factory=JudgedOnce, init=False)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/pubsub", self.pubsub, methods=["POST"]),
                Route("/distribution", self.distribution, methods=["POST"]),
                Route("/refresh", self.refresh, methods=["POST"]),
                Route("/healthz", self.healthz, methods=["GET"]),
                Route("/metrics", self.exposition, methods=["GET"]),
            ],
            lifespan=self._lifespan,
        )

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        tasks = []
        if self.reconcile is not None and self.reconcile_every is not None:
            tasks.append(asyncio.create_task(self._reconcile_forever(self.reconcile_every)))
        if self.manifests.git is not None and self.refresh_every:
            tasks.append(asyncio.create_task(self._refresh_forever(self.refresh_every)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if self.on_close is not None:
                await self.on_close()

    async def healthz(self, request: Request) -> Response:
        """200 while serving, with the manifests in use (their commit, the last refresh)."""
        return Response(self.renderer.health(self.manifests), media_type=JSON_TYPE)

    async def refresh(self, request: Request) -> Response:
        """Fetch the manifests now (e.g. from the manifest repository's CI after a merge).

        200 when the branch's newest commit is in use afterwards, 422 when its manifests are
        invalid and 502 when it could not be fetched (the previous set stays in both)."""
        refused = self._check_token(request, "/refresh")
        if refused is not None:
            return refused
        if self.manifests.git is None:
            return self._refuse(404, "the manifests are files, not from git: nothing to refresh")
        result = await self._refresh_once()
        status = {RefreshOutcome.INVALID: 422, RefreshOutcome.FAILED: 502}.get(result.outcome, 200)
        return Response(
            self.renderer.refresh_answer(result), status_code=status, media_type=JSON_TYPE
        )

    async def exposition(self, request: Request) -> Response:
        """Prometheus' text format (served here, not mounted, so /metrics needs no redirect)."""
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def pubsub(self, request: Request) -> Response:
        started = time.monotonic()
        if self.push_verifier is not None:
            authorization = request.headers.get("authorization")
            try:
                # Blocking: google-auth may fetch Google's certificates.
                caller = await asyncio.to_thread(self.push_verifier.verify, authorization)
            except PushRefused as refused:
                self.metrics.unauthorized.labels("/pubsub", str(refused.reason)).inc()
                log.warning("refused a Pub/Sub push from %s: %s", _peer(request), refused.message)
                return self._refuse(refused.reason.status, refused.message, bearer=True)
            log.debug("Pub/Sub push from %s", caller)
        body = await _read_body(request)
        if body is None:
            return self._refuse(413, f"the body exceeds {MAX_BODY} bytes")
        response = await self._judge_all([parse_pubsub(body)], 0)
        self.metrics.latency.labels("/pubsub").observe(time.monotonic() - started)
        return response

    async def distribution(self, request: Request) -> Response:
        started = time.monotonic()
        refused = self._check_token(request, "/distribution")
        if refused is not None:
            return refused
        body = await _read_body(request)
        if body is None:
            return self._refuse(413, f"the body exceeds {MAX_BODY} bytes")
        events, ignored = parse_distribution(body, request.query_params.get("registry"))
        response = await self._judge_all(events, ignored)
        self.metrics.latency.labels("/distribution").observe(time.monotonic() - started)
        return response

    def _check_token(self, request: Request, route: str) -> Response | None:
        """The refusal of a request without `--distribution-token`, or None to go on."""
        if self.distribution_token is None:
            return self._refuse(404, f"{route} is off: start with --distribution-token")
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        expected = self.distribution_token.encode()
        # Constant time, so the token cannot be guessed byte by byte from answer times.
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), expected):
            self.metrics.unauthorized.labels(route, TOKEN_REFUSAL).inc()
            log.warning("refused a request to %s from %s: bad token", route, _peer(request))
            return self._refuse(401, "a valid bearer token is required", bearer=True)
        return None

    async def _judge_all(self, events: Sequence[RegistryEvent], ignored: int) -> Response:
        decisions: list[Decision] = []
        # In order: a notification's events may build on each other (an index after its
        # children), and its answer lists them in the order they came.
        for event in events:
            in_use = self.manifests.current  # a refresh swaps the set; this event keeps its own

            async def judge(event: RegistryEvent, in_use: ManifestSet = in_use) -> Decision:
                return await in_use.auditor.judge(event)

            decision, new = await self.once.judge(event, judge)
            if new:
                self.metrics.count(decision)
                self.emit(self.renderer.decision_line(decision, in_use.commit))
            else:
                log.debug("already judged: %s %s", event.source, event.id)
            decisions.append(decision)
        status = 500 if any(d.verdict is Verdict.ERROR for d in decisions) else 200
        body = self.renderer.answer(decisions, ignored)
        return Response(body, status_code=status, media_type=JSON_TYPE)

    def _refuse(self, status: int, message: str, *, bearer: bool = False) -> Response:
        headers = {"WWW-Authenticate": 'Bearer realm="cip-audit"'} if bearer else None
        return Response(
            self.renderer.refusal(message), status_code=status, media_type=JSON_TYPE,
            headers=headers,
        )  # fmt: skip

    async def _reconcile_forever(self, every: float) -> None:
        assert self.reconcile is not None
        while True:
            in_use = self.manifests.current
            try:
                result = await self.reconcile(in_use.auditor)
            except (CipError, OSError) as error:
                log.error("reconcile failed: %s", getattr(error, "message", error))
                self.metrics.reconciled(None)
            else:
                self.metrics.reconciled(result)
                for decision in result.problems:
                    self.emit(self.renderer.decision_line(decision, in_use.commit))
                log.info("%s", self.renderer.reconcile_line(result))
            await asyncio.sleep(every)

    async def _refresh_once(self) -> RefreshResult:
        result = await self.manifests.refresh()
        self.metrics.refreshed(result)
        return result

    async def _refresh_forever(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)  # the set in use was loaded at start-up
            await self._refresh_once()


async def _read_body(request: Request) -> bytes | None:
    """The request body, or None past MAX_BODY (read no further: the sender is refused)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _peer(request: Request) -> str:
    return f"{request.client.host}:{request.client.port}" if request.client else "unknown"
