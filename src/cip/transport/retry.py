"""Retries as patient as real outages, as a middleware.

Registries throttle (429), restart behind load balancers (502/503/504, resets), answer 500 in
bursts and time out; some of that is over in a second, some takes minutes (upstream's promoter
retries for about twelve). So the policy is a deadline, not a count: a request is retried with
exponential backoff and full jitter (clients retrying in lock-step overload a registry again),
capped at `max_delay`, honouring `Retry-After`, for up to `budget_seconds` (five minutes by
default) from its first failure; then it fails with a retryable `RegistryError` naming the
registry, and the executor fails that one edge, not the run. Failures of the host itself (no
answer, 5xx) also open the host's circuit (`circuit.py`), so a host that is down is probed by
one request at a time and, once the patience is spent, fails every request at once.

Only requests whose body can be sent again are retried. A streamed body (a blob upload from an
async iterator) is gone after the first attempt, and a PATCH appends to the upload, so those
fail at once with a retryable error: the caller restarts the whole upload.
"""

from __future__ import annotations

import asyncio
import random
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiohttp

from cip.errors import RegistryError, connection_failure
from cip.transport.circuit import Circuits, HostCircuit, RetryPolicy
from cip.transport.headers import parse_retry_after
from cip.transport.responses import bytes_body, caused_by, drain, is_retryable_status, oci_error
from cip.transport.stack import authority

if TYPE_CHECKING:
    from aiohttp import ClientRequest, ClientResponse

    from cip.transport.stack import Handler

Sleep = Callable[[float], Awaitable[None]]

__all__ = ["RetryMiddleware", "RetryPolicy", "is_retryable_error", "parse_retry_after"]


# The resolver says the name does not exist (not "try again"): a typo, not an outage.
_NO_SUCH_NAME = frozenset(
    code for code in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None)) if code is not None
)


def is_retryable_error(exc: BaseException) -> bool:
    """No answer at all; a TLS handshake that fails, or a host name that does not exist, will
    fail the same way again."""
    if isinstance(exc, aiohttp.ClientSSLError) or caused_by(exc, ssl.SSLError):
        return False
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return getattr(exc.os_error, "errno", None) not in _NO_SUCH_NAME
    return isinstance(
        exc, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError | TimeoutError
    )


def is_replayable(request: ClientRequest) -> bool:
    """The body can be sent again: it was given as bytes, not as a stream."""
    if request.method == "PATCH":
        # Distribution 2.8.2 appends PATCH bodies and ignores Content-Range (measured): a
        # replay after a partial write would corrupt the upload.
        return False
    return bytes_body(request)


def describe(request: ClientRequest) -> str:
    """`METHOD /path` without the query: upload URLs carry opaque session state there."""
    return f"{request.method} {request.url.path}"


@dataclass(slots=True)
class _Failure:
    problem: str
    status: int | None = None
    code: str | None = None
    retry_after: float | None = None
    cause: Exception | None = None
    of_host: bool = True  # no answer or 5xx: the host's failure, which opens its circuit


class RetryMiddleware:
    """Retries one request within its `RetryPolicy`; raises a retryable RegistryError."""

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        registry: str | None = None,
        circuits: Circuits | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._policy = policy
        self._registry = registry
        self._circuits = circuits or Circuits(policy, clock=clock)
        self._sleep = sleep
        self._clock = clock
        self._rand = rand

    async def __call__(self, request: ClientRequest, handler: Handler) -> ClientResponse:
        host = authority(request)
        registry = self._registry or host
        circuit = self._circuits.host(host)
        replayable = is_replayable(request)
        first_failure: float | None = None
        attempt = 0
        while True:
            trial = await circuit.admit(describe(request))
            attempt += 1
            outcome = await self._attempt(request, handler, circuit, trial)
            if not isinstance(outcome, _Failure):
                return outcome
            failure = outcome
            now = self._clock()
            first_failure = now if first_failure is None else first_failure
            if failure.of_host:
                outage = circuit.failed(
                    trial,
                    failure.problem,
                    failure.status,
                    failure.retry_after,
                    connection_failure(failure.cause) if failure.cause is not None else None,
                )
                if outage is not None:
                    raise outage.error(describe(request)) from failure.cause
            if not replayable:
                raise RegistryError(
                    f"{describe(request)}: {failure.problem} while sending a streamed body; "
                    "it cannot be replayed, restart the upload",
                    registry=registry,
                    status=failure.status,
                    oci_code=failure.code,
                    retryable=True,
                ) from failure.cause
            delay = failure.retry_after
            if delay is None:
                delay = self._policy.backoff(attempt - 1, self._rand)
            elapsed = now - first_failure
            capped = self._policy.attempts is not None and attempt >= self._policy.attempts
            if capped or elapsed + delay > self._policy.budget_seconds:
                why = (
                    f"the registry asked to wait {delay:.0f} s, beyond the retry budget"
                    if failure.retry_after is not None and not capped
                    else "retry budget exhausted"
                )
                raise RegistryError(
                    f"{describe(request)}: {failure.problem}; gave up after {attempt} attempt"
                    f"{'s' if attempt > 1 else ''} in {elapsed:.1f} s ({why})",
                    registry=registry,
                    status=failure.status,
                    oci_code=failure.code,
                    retryable=True,
                ) from failure.cause
            await self._sleep(delay)

    async def _attempt(
        self, request: ClientRequest, handler: Handler, circuit: HostCircuit, trial: bool
    ) -> ClientResponse | _Failure:
        """One attempt: the response to return, or the failure to retry; tells the circuit."""
        told = False
        try:
            try:
                response = await handler(request)
            except Exception as exc:
                if not is_retryable_error(exc):
                    raise
                told = True  # by the caller, through circuit.failed()
                return _Failure(f"{type(exc).__name__}: {exc}", cause=exc)
            status = response.status
            if not is_retryable_status(status):
                circuit.answered(trial)
                told = True
                return response
            body = await drain(response)
            code = oci_error(body, request.method)[0]
            of_host = status >= 500
            if not of_host:
                circuit.answered(trial)  # 408/429: the host is up, this request must wait
            told = True
            return _Failure(
                f"HTTP {status}" + (f" {code}" if code else ""),
                status=status,
                code=code,
                retry_after=parse_retry_after(response.headers.get("retry-after")),
                of_host=of_host,
            )
        finally:
            if not told:
                circuit.abandoned(trial)
