"""Header values the HTTP stack reads, parsed into numbers; no HTTP library needed here."""

from __future__ import annotations

import email.utils
import time


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from `Retry-After`: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # str.isdigit accepts "²", which float() refuses
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; parsedate leaves naive for "-0000"
        return None
    wall = time.time() if now is None else now
    return max(0.0, when.timestamp() - wall)
