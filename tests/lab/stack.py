"""cip's full client stack (rate limit, retry, auth) over `create_http_registry`.

`create_http_registry` builds the layers (rate limit, retry, auth); tests only choose faster
retry timings and inspect what the layers did.
"""

from __future__ import annotations

import re
import secrets
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import datetime
from typing import Any

from cip.registry.connect import create_http_registry
from cip.registry.http import HttpRegistry
from cip.transport.auth import Authenticator
from cip.transport.counting import RequestCounter
from cip.transport.credentials import CredentialStore
from cip.transport.ratelimit import RateLimiter
from cip.transport.retry import RetryPolicy
from cip.transport.settings import NetworkOptions
from tests.lab.registry_lab import AccessEntry, LabRegistry

FAST_RETRIES = RetryPolicy(attempts=6, budget_seconds=20.0, base_delay=0.02, max_delay=0.2)
_STAMP = re.compile(
    r"\[(?P<stamp>[^\]]+)\] \"[A-Z]+ (?P<path>\S+) [^\"]*\" \d{3} .*\"(?P<ua>[^\"]*)\"$"
)


def resilient_registry(
    host: str,
    *,
    limiter: RateLimiter | None = None,
    policy: RetryPolicy = FAST_RETRIES,
    credentials: CredentialStore | None = None,
    options: NetworkOptions | None = None,
    counter: RequestCounter | None = None,
    timeout: float = 5.0,
    max_connections: int = 16,
) -> HttpRegistry:
    """cip's own client stack, with retries fast enough for tests."""
    return create_http_registry(
        host,
        options,
        counter=counter,
        timeout=timeout,
        max_connections=max_connections,
        credentials=credentials,
        limiter=limiter,
        retry=policy,
    )


def authenticated_registry(
    host: str,
    credentials: CredentialStore | None,
    *,
    options: NetworkOptions | None = None,
    **kwargs: Any,
) -> tuple[HttpRegistry, Authenticator]:
    """The full stack with login; the Authenticator is returned for inspection."""
    registry = resilient_registry(host, credentials=credentials, options=options, **kwargs)
    assert registry.authenticator is not None
    return registry, registry.authenticator


def settled_entries(lab: LabRegistry, timeout: float = 10.0) -> list[AccessEntry]:
    """`lab.entries()` once every answered request is logged, on registries that want auth.

    `LabRegistry.settle` treats the 401 of an auth-enabled registry as an error, so this sends
    its own sentinel (a path `entries()` already leaves out) and accepts any HTTP answer.
    """
    marker = f"/v2/?lab-sentinel=auth-{secrets.token_hex(4)}"
    try:
        with urllib.request.urlopen(f"{lab.url}{marker}", timeout=timeout):
            pass
    except urllib.error.HTTPError:
        pass
    deadline = time.monotonic() + timeout
    while marker + " " not in lab.access_log.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"registry {lab.host} did not log {marker}")
        time.sleep(0.005)
    return lab.entries()


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
