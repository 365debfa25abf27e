"""Blob reads and uploads of `HttpRegistry` over the Distribution API (distribution-spec
"Pulling blobs", "Pushing blobs", "Mounting a blob from another repository").
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterable, AsyncIterator

from yarl import URL

from cip.errors import DigestMismatchError, RegistryError
from cip.registry.client import (
    DEFAULT_CHUNK_SIZE,
    BlobSource,
    MountResult,
    UploadSession,
)
from cip.registry.http_base import NETWORK_ERRORS, NO_ENCODING, OCTET_STREAM, Answer, HttpBase
from cip.transport.responses import error_from, transport_error


class HttpBlobs(HttpBase):
    """Blobs: existence, streamed reads, uploads and cross-repository mounts."""

    async def blob_exists(self, repository: str, digest: str) -> bool:
        response = await self._send(
            "HEAD",
            await self._url(repository, f"blobs/{digest}"),
            f"HEAD blob {repository}@{digest}",
            missing_ok=True,
            allow_redirects=True,
            context=self._ctx(repository, digest),
        )
        return response is not None

    async def stream_blob(
        self, repository: str, digest: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> AsyncIterator[bytes]:
        ctx = self._ctx(repository, digest)
        what = f"GET blob {repository}@{digest}"
        url = await self._url(repository, f"blobs/{digest}")
        hasher = hashlib.new(digest.partition(":")[0])
        try:
            # Blob GETs may redirect to storage (S3, GCS): followed, and the auth middleware
            # sends credentials to the registry's own endpoint only.
            async with self._session.request(
                "GET", url, allow_redirects=True, skip_auto_headers=NO_ENCODING
            ) as response:
                if response.status != 200:
                    raise error_from(response, await response.read(), what, **ctx)
                async for chunk in response.content.iter_chunked(chunk_size):
                    hasher.update(chunk)
                    yield chunk
        except NETWORK_ERRORS as exc:
            raise transport_error(what, exc, ctx) from exc
        actual = f"{digest.partition(':')[0]}:{hasher.hexdigest()}"
        if actual != digest:
            raise DigestMismatchError(f"{what}: content hashes to {actual}; refused", **ctx)

    def _upload_session(self, repository: str, answer: Answer, what: str) -> UploadSession:
        location = answer.headers.get("location")
        if not location:
            raise RegistryError(f"{what}: no Location header", **self._ctx(repository))
        # As sent: the query carries the registry's opaque upload state, never re-quoted.
        url = answer.response.url.join(URL(location, encoded=True))
        return UploadSession(repository, str(url))

    async def start_upload(self, repository: str) -> UploadSession:
        what = f"start upload to {repository}"
        response = await self._must(
            "POST",
            await self._url(repository, "blobs/uploads/"),
            what,
            ok=(202,),
            headers={"Content-Length": "0"},
            context=self._ctx(repository),
        )
        return self._upload_session(repository, response, what)

    async def mount_blob(self, repository: str, digest: str, source: str) -> MountResult:
        what = f"mount {digest} from {source} into {repository}"
        response = await self._must(
            "POST",
            await self._url(repository, "blobs/uploads/"),
            what,
            ok=(201, 202),
            params={"mount": digest, "from": self.settings.repository_path(source)},
            headers={"Content-Length": "0"},
            context=self._ctx(repository, digest),
        )
        if response.status == 201:
            return MountResult(mounted=True)
        # 202: the registry declined (blob not in source, or no access); upload instead.
        return MountResult(mounted=False, session=self._upload_session(repository, response, what))

    async def upload_blob(
        self,
        repository: str,
        digest: str,
        data: BlobSource,
        *,
        size: int | None = None,
        session: UploadSession | None = None,
    ) -> None:
        """POST then PUT with the body, or POST, one streamed PATCH, then PUT.

        A single `POST ?digest=` is not honoured by Distribution 2.8.2 (measured), so monolithic
        uploads always use the two-step form (distribution-spec "POST then PUT").
        """
        ctx = self._ctx(repository, digest)
        what = f"upload {digest} to {repository}"
        session = session or await self.start_upload(repository)
        location = session.location
        try:
            if isinstance(data, bytes):
                body: bytes | AsyncIterable[bytes] = data
                headers = {"Content-Type": OCTET_STREAM, "Content-Length": str(len(data))}
            else:
                patch_headers = {"Content-Type": OCTET_STREAM}
                if size is not None:
                    # Chunked upload headers (distribution-spec "Pushing a blob in chunks").
                    patch_headers["Content-Length"] = str(size)
                    if size:
                        patch_headers["Content-Range"] = f"0-{size - 1}"
                response = await self._must(
                    "PATCH", URL(location, encoded=True), what, ok=(202, 204), data=data,
                    headers=patch_headers, context=ctx,
                )  # fmt: skip
                location = self._upload_session(repository, response, what).location
                body, headers = b"", {"Content-Length": "0"}
            put_url = URL(
                f"{location}{'&' if '?' in location else '?'}digest={digest}", encoded=True
            )
            try:
                await self._must(
                    "PUT", put_url, what, ok=(201, 204), data=body, headers=headers, context=ctx
                )
            except RegistryError as error:
                # A lost answer after the registry stored the blob: the replay finds the session
                # closed (Distribution 2.8.2: 404 BLOB_UPLOAD_UNKNOWN); the blob there is done.
                with contextlib.suppress(RegistryError):
                    if await self.blob_exists(repository, digest):
                        return
                raise error
        except BaseException:
            await self._cancel(location)
            raise

    async def _cancel(self, location: str) -> None:
        # Best effort: registries garbage-collect abandoned uploads anyway.
        with contextlib.suppress(*NETWORK_ERRORS, RegistryError):
            async with self._session.request("DELETE", URL(location, encoded=True)) as response:
                await response.read()
