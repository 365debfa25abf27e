"""The plumbing under `HttpRegistry`: how a request is sent, checked and read.

Kept apart from the Distribution API methods (`http.py`) and the blob transfers
(`http_blobs.py`) so each stays readable on its own; all three are one `HttpRegistry`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import aiohttp
from yarl import URL

from cip.errors import RegistryError
from cip.oci import media
from cip.transport.auth import Authenticator
from cip.transport.counting import RequestCounter
from cip.transport.responses import error_from, transport_error
from cip.transport.scheme import SchemeProbe
from cip.transport.session import Session
from cip.transport.settings import HostSettings

OCTET_STREAM = "application/octet-stream"
NETWORK_ERRORS = (aiohttp.ClientError, TimeoutError)
# Blob bytes are hashed as they arrive: ask for them exactly as stored, never re-encoded.
NO_ENCODING = ("Accept-Encoding",)


class Answer:
    """A response whose (small) body was read, its connection back in the pool."""

    __slots__ = ("body", "response")

    def __init__(self, response: aiohttp.ClientResponse, body: bytes) -> None:
        self.response = response
        self.body = body

    @property
    def status(self) -> int:
        return self.response.status

    @property
    def headers(self) -> Any:
        return self.response.headers


class HttpBase:
    """A Distribution registry host; repositories are paths below it."""

    def __init__(
        self,
        settings: HostSettings,
        session: Session,
        counter: RequestCounter,
        *,
        base_url: str | None = None,
        catalog_page_size: int | None = 1000,
    ) -> None:
        self.settings = settings
        self.counter = counter
        self._session = session
        self._scheme = SchemeProbe(settings, session, base_url, counter=counter)
        self._catalog_page_size = catalog_page_size
        self._referrers_api: bool | None = None  # None until the first answer says
        self._referrers_probe = asyncio.Lock()
        self.authenticator: Authenticator | None = None  # set by create_http_registry

    @property
    def name(self) -> str:
        return self.settings.host

    async def aclose(self) -> None:
        await self._session.aclose()

    # -- plumbing ---------------------------------------------------------------------------

    async def base_url(self) -> str:
        return await self._scheme.base_url()

    def _ctx(self, repository: str | None, digest: str | None = None) -> media.ErrorContext:
        return {"registry": self.settings.host, "image": repository, "digest": digest}

    async def _url(self, repository: str, tail: str) -> str:
        return f"{await self.base_url()}/v2/{self.settings.repository_path(repository)}/{tail}"

    async def _send(
        self,
        method: str,
        url: str | URL,
        what: str,
        *,
        ok: Sequence[int] = (200,),
        missing_ok: bool = False,
        context: media.ErrorContext,
        **kwargs: Any,
    ) -> Answer | None:
        kwargs.setdefault("allow_redirects", False)
        try:
            async with self._session.request(method, url, **kwargs) as response:
                answer = Answer(response, await response.read())
        except NETWORK_ERRORS as exc:
            raise transport_error(what, exc, context) from exc
        if response.status in ok:
            return answer
        if missing_ok and response.status == 404:
            return None
        raise error_from(response, answer.body, what, **context)

    def _json(self, answer: Answer, what: str, repository: str | None = None) -> dict[str, Any]:
        """A JSON object body, or a RegistryError naming the registry (never a traceback)."""
        try:
            body = json.loads(answer.body)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise RegistryError(f"{what}: the answer is not a JSON object", **self._ctx(repository))
        return body

    async def _must(self, method: str, url: str | URL, what: str, **kwargs: Any) -> Answer:
        response = await self._send(method, url, what, **kwargs)
        assert response is not None  # missing_ok=False
        return response

    # -- discovery --------------------------------------------------------------------------
