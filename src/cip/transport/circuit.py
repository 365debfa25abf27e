"""Per-host circuits: a host that stops answering is probed by one request at a time.

Without a circuit, every request to a host that went down retries on its own, each spending the
whole retry patience (minutes), so a run with many edges on that host would wait patience ×
edges / concurrency. With it, the first failure opens the host's circuit: the other requests
wait instead of sending, and once per backoff period one of them goes as a trial. Any answer
that is not a failure of the host (any status but 5xx) closes the circuit and everyone goes
on. A circuit open for the whole patience breaks: the host is down, and every request to it fails
at once with one error, so its edges fail once and the run ends. A broken circuit still lets
one trial through per `max_delay`, so a long-running process (the auditor) notices when the
host is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from cip.errors import RegistryError

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How patient to be: a deadline (not a count), and the exponential backoff curve."""

    budget_seconds: float = 300.0  # --retry-timeout: how long a host or request may fail
    base_delay: float = 0.5
    max_delay: float = 30.0  # --retry-max-backoff
    attempts: int | None = None  # an optional cap on attempts per request (tests)

    def backoff(self, retry: int, rand: Callable[[], float]) -> float:
        """Full jitter: uniform in [0, min(max, base * 2**retry)] (AWS architecture blog)."""
        return rand() * min(self.max_delay, self.base_delay * (2.0 ** min(retry, 62)))


@dataclass(frozen=True, slots=True)
class Outage:
    """Why a broken circuit refuses requests: the host, what failed, for how long."""

    host: str
    problem: str
    seconds: float
    status: int | None
    # Why no connection could be made ("connection refused"), when that was the failure: the
    # requests this outage fails at once carry no OS error of their own, and reports group
    # unreachable hosts by it (one line per host, not one per edge).
    unreachable: str | None = None

    def error(self, what: str) -> RegistryError:
        return RegistryError(
            f"{what}: {self.host} kept failing for {self.seconds:.0f} s ({self.problem}); "
            "its requests fail at once until it answers again",
            registry=self.host,
            status=self.status,
            retryable=True,
            unreachable=self.unreachable,
        )


class HostCircuit:
    """Closed (requests flow), open (requests wait for a trial) or broken (requests fail)."""

    def __init__(
        self,
        host: str,
        policy: RetryPolicy,
        *,
        clock: Clock = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.host = host
        self._policy = policy
        self._clock = clock
        self._rand = rand
        self.open_since: float | None = None
        self._trials = 0  # failed trials since the circuit opened: the backoff exponent
        self._next_trial = 0.0
        self._trial_in_flight = False
        self._changed = asyncio.Event()
        self.outage: Outage | None = None

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def admit(self, what: str) -> bool:
        """Wait until a request may be sent; True when it goes as the open circuit's trial."""
        while True:
            now = self._clock()
            trial_due = not self._trial_in_flight and now >= self._next_trial
            if self.outage is not None:
                if not trial_due:
                    raise self.outage.error(what)
                self._trial_in_flight = True
                return True
            if self.open_since is None:
                return False
            if trial_due:
                self._trial_in_flight = True
                return True
            changed = self._changed
            wait = None if self._trial_in_flight else self._next_trial - now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), wait)

    def answered(self, trial: bool) -> None:
        """The host answered (anything but a failure of its own): close the circuit."""
        if trial:
            self._trial_in_flight = False
        if self.open_since is not None or self.outage is not None:
            self.open_since, self.outage = None, None
            self._trials = 0
            self._notify()

    def abandoned(self, trial: bool) -> None:
        """A request ended without telling whether the host is up (cancelled, TLS refused)."""
        if trial:
            self._trial_in_flight = False
            self._notify()

    def failed(
        self,
        trial: bool,
        problem: str,
        status: int | None,
        retry_after: float | None,
        unreachable: str | None = None,
    ) -> Outage | None:
        """The host failed a request (`unreachable`: why no connection could be made, if that
        was it); returns the outage when this failure broke the circuit."""
        now = self._clock()
        if trial:
            self._trial_in_flight = False
        if self.outage is not None:
            self._next_trial = now + self._policy.max_delay  # the next trial of a down host
            return self.outage
        if self.open_since is None:
            self.open_since, self._trials = now, 0
        elif not trial:
            return None  # sent before the circuit opened: its failure is already counted
        self._trials += 1
        if now - self.open_since >= self._policy.budget_seconds:
            self.outage = Outage(self.host, problem, now - self.open_since, status, unreachable)
            self._next_trial = now + self._policy.max_delay
        else:
            delay = self._policy.backoff(self._trials - 1, self._rand)
            self._next_trial = now + (delay if retry_after is None else retry_after)
        self._notify()
        return self.outage


class Circuits:
    """The circuits of one session's hosts (the registry, and any host it redirects to)."""

    def __init__(self, policy: RetryPolicy, *, clock: Clock = time.monotonic) -> None:
        self._policy = policy
        self._clock = clock
        self._hosts: dict[str, HostCircuit] = {}

    def host(self, host: str) -> HostCircuit:
        circuit = self._hosts.get(host)
        if circuit is None:
            circuit = self._hosts[host] = HostCircuit(host, self._policy, clock=self._clock)
        return circuit
