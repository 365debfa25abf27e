"""Turning registry answers into values and errors, shared by every HTTP layer.

A refusal becomes a `RegistryError` carrying the HTTP status, the OCI error code from the body
(distribution-spec "Error Codes") and whether retrying may help, so a retry layer and the
executor decide from data, not from message text.
"""

from __future__ import annotations

import json

import httpx

from cip.errors import DigestMismatchError, RegistryError
from cip.registry.media import ErrorContext

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def error_from(response: httpx.Response, what: str, **context: str | None) -> RegistryError:
    """A RegistryError from a refusal, with the OCI error code when the body has one."""
    code: str | None = None
    detail = ""
    if response.request.method != "HEAD":
        try:
            body = json.loads(response.content)
            first = body["errors"][0]
            code = str(first.get("code") or "") or None
            detail = str(first.get("message") or "")
        except (ValueError, KeyError, IndexError, TypeError, httpx.ResponseNotRead):
            pass
    status = response.status_code
    message = (
        f"{what}: HTTP {status}" + (f" {code}" if code else "") + (f": {detail}" if detail else "")
    )
    cls = DigestMismatchError if code == "DIGEST_INVALID" else RegistryError
    return cls(
        message,
        registry=context.get("registry"),
        image=context.get("image"),
        digest=context.get("digest"),
        status=status,
        oci_code=code,
        retryable=status in RETRYABLE_STATUS or code == "TOOMANYREQUESTS",
    )


def transport_error(what: str, exc: Exception, ctx: ErrorContext) -> RegistryError:
    """No answer at all (refused, reset, timed out): worth retrying by a later layer."""
    return RegistryError(f"{what}: {type(exc).__name__}: {exc}", retryable=True, **ctx)


def next_link(response: httpx.Response) -> str | None:
    """The `Link: <url>; rel="next"` target (distribution-spec "Listing Tags", RFC 5988)."""
    target = response.links.get("next", {}).get("url")
    return str(response.url.join(target)) if target else None
