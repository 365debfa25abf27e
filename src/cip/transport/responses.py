"""Turning registry answers into values and errors, shared by every HTTP layer.

A refusal becomes a `RegistryError` carrying the HTTP status, the OCI error code from the body
(distribution-spec "Error Codes") and whether retrying may help, so a retry layer and the
executor decide from data, not from message text.
"""

from __future__ import annotations

import json

import httpx

from cip.errors import DigestMismatchError, RegistryError
from cip.oci.media import ErrorContext


def caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether `kind` is anywhere in the exception's chain (httpx wraps socket and TLS errors)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def is_retryable_status(status: int) -> bool:
    """408, 429 and 5xx; 501 and 505 say "never", not "not now" (RFC 9110 §15.6.2, §15.6.6)."""
    return status in (408, 429) or (500 <= status <= 599 and status not in (501, 505))


def oci_error(response: httpx.Response, method: str) -> tuple[str | None, str]:
    """The first OCI error code and message of a body (distribution-spec "Error Codes").

    `method` is passed in because below the client (in transport layers) a response does not
    know its request yet.
    """
    if method == "HEAD":
        return None, ""  # a HEAD answer has no body
    try:
        first = json.loads(response.content)["errors"][0]
        return str(first.get("code") or "") or None, str(first.get("message") or "")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, httpx.ResponseNotRead):
        return None, ""


def error_from(response: httpx.Response, what: str, **context: str | None) -> RegistryError:
    """A RegistryError from a refusal, with the OCI error code when the body has one."""
    code, detail = oci_error(response, response.request.method)
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
        retryable=is_retryable_status(status) or code == "TOOMANYREQUESTS",
    )


def transport_error(what: str, exc: Exception, ctx: ErrorContext) -> RegistryError:
    """No answer at all (refused, reset, timed out): worth retrying by the retry layer."""
    return RegistryError(f"{what}: {type(exc).__name__}: {exc}", retryable=True, **ctx)


def next_link(response: httpx.Response) -> str | None:
    """The `Link: <url>; rel="next"` target (distribution-spec "Listing Tags", RFC 5988)."""
    target = response.links.get("next", {}).get("url")
    return str(response.url.join(target)) if target else None
