"""Which scheme reaches a registry host: HTTPS, or plain HTTP where that is allowed.

Like docker for insecure registries: try HTTPS first and fall back to HTTP only when the TLS
connection itself fails, never on an HTTP error status, and never for a certificate that is
offered but not trusted (plain HTTP would hide that). Decided once per host and remembered,
failures included. An HTTPS try that ends in plain HTTP is a question answered, not a failed
request: it is taken back from the run's request counts.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING

import aiohttp
from yarl import URL

from cip.errors import RegistryError
from cip.transport.counting import RequestCounter
from cip.transport.responses import caused_by
from cip.transport.settings import HostSettings

if TYPE_CHECKING:
    from cip.transport.session import Session


class SchemeProbe:
    def __init__(
        self,
        settings: HostSettings,
        session: Session,
        base_url: str | None = None,
        *,
        counter: RequestCounter | None = None,
    ):
        self._settings = settings
        self._session = session
        self._counter = counter
        self._base = base_url
        self._lock = asyncio.Lock()
        self._error: RegistryError | None = None

    async def base_url(self) -> str:
        """`https://endpoint`, or `http://` when plain HTTP is allowed and TLS is not offered."""
        if self._base is not None:
            return self._base
        async with self._lock:
            if self._error is not None:
                # The probe already failed with its retries spent: every repository of this
                # host would wait for the same answer again, one after another.
                raise self._error
            if self._base is None:
                self._base = await self._probe()
            return self._base

    async def _probe(self) -> str:
        endpoint = self._settings.endpoint
        https = f"https://{endpoint}"
        if not self._settings.allow_http:
            return https
        try:
            async with self._session.request("GET", f"{https}/v2/") as response:
                await response.read()
            return https
        except RegistryError as error:
            self._error = error  # unreachable over either scheme
            raise
        except (aiohttp.ClientError, TimeoutError) as exc:
            if isinstance(exc, aiohttp.ClientConnectorCertificateError) or caused_by(
                exc, ssl.SSLCertVerificationError
            ):
                raise RegistryError(
                    f"TLS certificate of {endpoint} is not trusted ({exc}); "
                    "pass its CA with --ca-file or SSL_CERT_FILE",
                    registry=self._settings.host,
                ) from exc
            if self._counter is not None:
                # Counted as "no answer" by the stack; not retried (TLS refused), so once.
                self._counter.withdraw(URL(https).raw_authority, "GET", 0)
            return f"http://{endpoint}"
