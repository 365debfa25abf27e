"""Retries with a bounded budget, as a middleware.

Registries throttle (429), restart behind load balancers (502/503/504, resets) and time out;
most of that is over in a second, so a request is retried with exponential backoff and full
jitter (many clients retrying in lock-step is what overloads a registry again). Every request
has a budget of attempts and seconds: when it is spent, the request fails with a retryable
`RegistryError` that names the registry, and the executor fails that one edge, not the run.

Only requests whose body can be sent again are retried. A streamed body (a blob upload from an
async iterator) is gone after the first attempt, and a PATCH appends to the upload, so those
fail at once with a retryable error: the caller restarts the whole upload.
"""

from __future__ import annotations

import asyncio
import random
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiohttp

from cip.errors import RegistryError
from cip.transport.headers import parse_retry_after
from cip.transport.responses import (
    bytes_body,
    caused_by,
    drain,
    is_retryable_status,
    oci_error,
)
from cip.transport.stack import authority

if TYPE_CHECKING:
    from aiohttp import ClientRequest, ClientResponse

    from cip.transport.stack import Handler

Sleep = Callable[[float], Awaitable[None]]


def is_retryable_error(exc: BaseException) -> bool:
    """No answer at all; a TLS handshake that fails will fail the same way again."""
    if isinstance(exc, aiohttp.ClientSSLError) or caused_by(exc, ssl.SSLError):
        return False
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


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try one request: attempts, total seconds, and the backoff curve."""

    attempts: int = 5
    budget_seconds: float = 60.0
    base_delay: float = 0.25
    max_delay: float = 10.0

    def backoff(self, retry: int, rand: Callable[[], float]) -> float:
        """Full jitter: uniform in [0, min(max, base * 2**retry)] (AWS architecture blog)."""
        return rand() * min(self.max_delay, self.base_delay * (2.0**retry))


class RetryMiddleware:
    """Retries one request within its `RetryPolicy` budget; raises a retryable RegistryError."""

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        registry: str | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._policy = policy
        self._registry = registry
        self._sleep = sleep
        self._clock = clock
        self._rand = rand

    async def __call__(self, request: ClientRequest, handler: Handler) -> ClientResponse:
        registry = self._registry or authority(request)
        replayable = is_replayable(request)
        started = self._clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await handler(request)
            except Exception as exc:
                if not is_retryable_error(exc):
                    raise
                if not replayable:
                    raise RegistryError(
                        f"{describe(request)}: {type(exc).__name__} while sending a streamed "
                        "body; it cannot be replayed, restart the upload",
                        registry=registry,
                        retryable=True,
                    ) from exc
                problem, status, code, wait = f"{type(exc).__name__}: {exc}", None, None, None
                last_exc: Exception | None = exc
            else:
                if not is_retryable_status(response.status):
                    return response
                body = await drain(response)
                status, code, last_exc = response.status, oci_error(body, request.method)[0], None
                problem = f"HTTP {status}" + (f" {code}" if code else "")
                if not replayable:
                    raise RegistryError(
                        f"{describe(request)}: {problem} after a streamed body was sent; it "
                        "cannot be replayed, restart the upload",
                        registry=registry,
                        status=status,
                        oci_code=code,
                        retryable=True,
                    )
                wait = parse_retry_after(response.headers.get("retry-after"))
            elapsed = self._clock() - started
            left = self._policy.budget_seconds - elapsed
            delay = self._policy.backoff(attempt - 1, self._rand) if wait is None else wait
            if attempt >= self._policy.attempts or delay > left:
                why = (
                    f"the registry asked to wait {delay:.0f} s, beyond the retry budget"
                    if wait is not None and delay > left
                    else "retry budget exhausted"
                )
                raise RegistryError(
                    f"{describe(request)}: {problem}; gave up after {attempt} attempt"
                    f"{'s' if attempt > 1 else ''} in {elapsed:.1f} s ({why})",
                    registry=registry,
                    status=status,
                    oci_code=code,
                    retryable=True,
                ) from last_exc
            await self._sleep(delay)
