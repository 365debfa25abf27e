"""Turning registry answers into values and errors, shared by every HTTP layer.

A refusal becomes a `RegistryError` carrying the HTTP status, the OCI error code from the body
(distribution-spec "Error Codes") and whether retrying may help, so a retry layer and the
executor decide from data, not from message text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

import aiohttp
from aiohttp.payload import BytesPayload

from cip.errors import DigestMismatchError, RegistryError
from cip.oci.media import ErrorContext

if TYPE_CHECKING:
    from aiohttp import ClientRequest, ClientResponse


def caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether `kind` is anywhere in the exception's chain (aiohttp wraps socket and TLS errors)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def is_retryable_status(status: int) -> bool:
    """408, 429 and 5xx; 501 and 505 say "never", not "not now" (RFC 9110 §15.6.2, §15.6.6)."""
    return status in (408, 429) or (500 <= status <= 599 and status not in (501, 505))


def oci_error(body: bytes, method: str) -> tuple[str | None, str]:
    """The first OCI error code and message of a body (distribution-spec "Error Codes")."""
    if method == "HEAD" or not body:
        return None, ""  # a HEAD answer has no body
    try:
        first = json.loads(body)["errors"][0]
        return str(first.get("code") or "") or None, str(first.get("message") or "")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None, ""


def error_from(
    response: ClientResponse, body: bytes, what: str, **context: str | None
) -> RegistryError:
    """A RegistryError from a refusal, with the OCI error code when the body has one."""
    code, detail = oci_error(body, response.method)
    status = response.status
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


def next_link(response: ClientResponse) -> str | None:
    """The `Link: <url>; rel="next"` target (distribution-spec "Listing Tags", RFC 5988)."""
    if "Link" not in response.headers:
        return None
    found: Mapping[str, object] = response.links.get("next", {})  # joined with the URL
    target = found.get("url")
    return str(target) if target else None


async def drain(response: ClientResponse) -> bytes:
    """Read a small (error) body so its connection goes back to the pool, then release it."""
    try:
        return await response.read()
    except (aiohttp.ClientError, TimeoutError):
        return b""
    finally:
        response.release()


def bytes_body(request: ClientRequest) -> bool:
    """The body was given as bytes (or is empty), so it can be sent again; a stream cannot."""
    body = request.body
    return body == b"" or isinstance(body, BytesPayload)
