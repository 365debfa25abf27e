"""Per-host request rates and concurrency, as a middleware.

A registry throttles per host, and every method costs it the same CPU (Distribution 2.8.2: ~2 ms a
request), so the limit covers every request, HEADs included. By default nothing is capped:
cip goes as fast as the registry answers until it says 429, then that host's rate is cut
multiplicatively and recovers additively (AIMD, as TCP does) until it is uncapped again. A
fixed cap (`--rate-limit=N`, `--rate-limit=HOST=N`; upstream runs Artifact Registry at 50/s)
is a promise to the operator: never more than N request starts in any one-second window.

All state lives in a `RateLimiter` object owned by the run (no module state), keyed by host,
so every client of the same host shares one budget. Uses asyncio primitives only.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from cip.transport.headers import parse_retry_after
from cip.transport.limits import RateLimitConfig as RateLimitConfig  # re-exported
from cip.transport.stack import authority

if TYPE_CHECKING:
    from aiohttp import ClientRequest, ClientResponse

    from cip.transport.stack import Handler

Clock = Callable[[], float]


RateSource = Callable[[], float | None]


class TokenBucket:
    """Start times spaced by 1/rate (burst 1), so any one-second window holds at most `rate`.

    Waiters queue FIFO on a lock. The rate is read again on every wake-up, so a rate that
    recovers (adaptive mode) speeds up requests already waiting. A rate of None is uncapped.
    """

    def __init__(self, rate: float | RateSource | None, *, clock: Clock = time.monotonic) -> None:
        self._source: RateSource = rate if callable(rate) else (lambda: rate)
        self._clock = clock
        self._tokens = 1.0
        self._stamp = clock()
        self._lock = asyncio.Lock()

    def _refill(self, rate: float | None) -> None:
        now = self._clock()
        if rate is None:
            self._tokens = 1.0
        else:
            self._tokens = min(1.0, self._tokens + (now - self._stamp) * rate)
        self._stamp = now

    async def acquire(self) -> None:
        if self._source() is None and not self._lock.locked():
            self._refill(None)
            return  # uncapped: no queue, no lock round-trip on the hot path
        async with self._lock:
            while True:
                rate = self._source()
                self._refill(rate)
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                assert rate is not None
                await asyncio.sleep(min((1.0 - self._tokens) / rate, _MAX_NAP))


_MAX_NAP = 0.25  # how late a waiter may notice that the adaptive rate recovered


class HostLimit:
    """One host: its bucket, concurrency, and (when adaptive) the AIMD state."""

    def __init__(self, config: RateLimitConfig, host: str, clock: Clock) -> None:
        self.host = host
        self._config = config
        self._clock = clock
        fixed = config.rate_for(host)
        self.adaptive = fixed is None
        self.bucket = TokenBucket(self.current_rate if fixed is None else fixed, clock=clock)
        limit = config.concurrency_for(host)
        self.slots = asyncio.Semaphore(limit) if limit else None
        self._sent: deque[float] = deque()  # start times in the last second
        self._cut_at = -math.inf
        self._cut_rate = 0.0
        self._ceiling = 0.0
        self._paused_until = 0.0
        self.cuts = 0
        self.history: deque[tuple[float, float, float]] = deque(maxlen=64)  # (when, from, to)

    def current_rate(self) -> float | None:
        """The rate now: fixed, or the cut rate plus additive recovery (None once recovered)."""
        if not self.adaptive:
            return self._config.rate_for(self.host)
        if self._cut_rate == 0.0:
            return None
        since = self._clock() - self._cut_at
        rate = self._cut_rate * (1.0 + self._config.recovery * since)
        if rate >= self._ceiling:
            self._cut_rate = 0.0
            return None
        return rate

    async def before_send(self) -> float:
        pause = self._paused_until - self._clock()
        if pause > 0:
            await asyncio.sleep(pause)
        await self.bucket.acquire()
        now = self._clock()
        self._sent.append(now)
        while self._sent and self._sent[0] < now - 1.0:
            self._sent.popleft()
        return now

    def throttled(self, sent_at: float, retry_after: float | None) -> None:
        """A 429 for a request started at `sent_at`: one cut per round of requests in flight."""
        now = self._clock()
        # A request sent within a second of a Retry-After pause's end: the last second's sends
        # are mostly the pause, so they say nothing of the rate the registry refused.
        after_pause = sent_at < self._paused_until + 1.0
        if retry_after:
            self._paused_until = max(self._paused_until, now + retry_after)
        if not self.adaptive or sent_at < self._cut_at:
            return  # sent before the last cut: that cut already answered it (TCP's rule)
        measured = float(max(1, len(self._sent)))
        current = self.current_rate()
        if current is not None:
            measured = current if after_pause else min(current, measured)
        base = measured
        self._ceiling = base  # the rate the registry refused: uncapped again once back there
        self._cut_rate = max(self._config.min_rate, base * self._config.decrease)
        self._cut_at = now
        self.cuts += 1
        self.history.append((now, base, self._cut_rate))


class RateLimiter:
    """Run-wide limits for every host; hand `middleware(...)` to the session."""

    def __init__(self, config: RateLimitConfig | None = None, *, clock: Clock = time.monotonic):
        self.config = config or RateLimitConfig()
        self._clock = clock
        self._hosts: dict[str, HostLimit] = {}

    def host(self, host: str) -> HostLimit:
        limit = self._hosts.get(host)
        if limit is None:
            limit = self._hosts[host] = HostLimit(self.config, host, self._clock)
        return limit

    def rate(self, host: str) -> float | None:
        """Requests/second allowed to `host` now; None means uncapped."""
        return self.host(host).current_rate()

    def middleware(
        self, host: str | None = None, endpoint: str | None = None
    ) -> RateLimitMiddleware:
        """Requests to `endpoint` count against `host` (the name in manifests, e.g. docker.io)."""
        return RateLimitMiddleware(self, {endpoint: host} if host and endpoint else {})


class RateLimitMiddleware:
    """Waits for a slot and a token before each attempt; tells the host about 429s."""

    def __init__(self, limiter: RateLimiter, aliases: Mapping[str, str]) -> None:
        self._limiter = limiter
        self._aliases = aliases

    async def __call__(self, request: ClientRequest, handler: Handler) -> ClientResponse:
        netloc = authority(request)
        limit = self._limiter.host(self._aliases.get(netloc, netloc))
        slots = limit.slots
        if slots is not None:
            await slots.acquire()
        try:
            sent_at = await limit.before_send()
            response = await handler(request)
        except BaseException:
            if slots is not None:
                slots.release()
            raise
        if response.status == 429:
            limit.throttled(sent_at, parse_retry_after(response.headers.get("retry-after")))
        if slots is not None:
            # The slot is held until the body is consumed or closed: streams count as in flight.
            connection = response.connection
            if connection is None:
                slots.release()  # no body to wait for (HEAD, or already read)
            else:
                connection.add_callback(slots.release)
        return response
