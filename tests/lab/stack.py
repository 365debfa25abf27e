"""cip's full client stack (rate limit, retry, auth) over `create_http_registry`.

Until the layers are wired into `create_http_registry` itself, tests compose them through its
`wrappers` argument, innermost first: rate limit (every attempt waits for its slot), retry
(each attempt passes the limiter again), auth (a retried request keeps its token).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from cip.registry.client import RequestCounter
from cip.registry.http import HttpRegistry, create_http_registry
from cip.registry.names import NetworkOptions
from cip.registry.ratelimit import RateLimiter
from cip.registry.retry import RetryPolicy, retry_wrapper
from cip.registry.transport import TransportWrapper
from tests.lab.registry_lab import LabRegistry

FAST_RETRIES = RetryPolicy(attempts=6, budget_seconds=20.0, base_delay=0.02, max_delay=0.2)
_STAMP = re.compile(
    r"\[(?P<stamp>[^\]]+)\] \"[A-Z]+ (?P<path>\S+) [^\"]*\" \d{3} .*\"(?P<ua>[^\"]*)\"$"
)


def resilient_registry(
    host: str,
    *,
    limiter: RateLimiter | None = None,
    policy: RetryPolicy = FAST_RETRIES,
    auth: TransportWrapper | None = None,
    options: NetworkOptions | None = None,
    counter: RequestCounter | None = None,
    timeout: float = 5.0,
    max_connections: int = 16,
) -> HttpRegistry:
    wrappers: Sequence[TransportWrapper] = [
        (limiter or RateLimiter()).wrapper(),
        retry_wrapper(policy, registry=host),
        *([auth] if auth else []),
    ]
    return create_http_registry(
        host,
        options,
        wrappers=wrappers,
        counter=counter,
        timeout=timeout,
        max_connections=max_connections,
    )


def cip_requests_per_second(lab: LabRegistry) -> Counter[datetime]:
    """Requests cip sent per wall-clock second, from the registry's own access log.

    Distribution stamps a line when the request starts, at one-second resolution.
    """
    lab.settle()
    out: Counter[datetime] = Counter()
    for line in lab.access_log.read_text(errors="replace").splitlines():
        match = _STAMP.search(line)
        if match and match["ua"].startswith("cip/"):
            out[datetime.strptime(match["stamp"], "%d/%b/%Y:%H:%M:%S %z")] += 1
    return out
