"""The Registry protocol over the OCI Distribution API, on aiohttp.

One `HttpRegistry` per `host[:port]`: that is the unit that owns a connection pool, TLS settings,
a token cache and a rate limit. The session is built by `connect.create_http_registry` from the
transport stack (`cip.transport`), so retries, auth and rate limits sit under this code and it
only speaks the Distribution API.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from typing import Any

import aiohttp
from yarl import URL

from cip.errors import DigestMismatchError, RegistryError
from cip.oci import media
from cip.oci.media import Descriptor
from cip.registry.answers import Pages, google_manifests, manifest_info, strings
from cip.registry.client import (
    DEFAULT_CHUNK_SIZE,
    BlobSource,
    ListedManifest,
    Manifest,
    ManifestInfo,
    MountResult,
    TagList,
    UploadSession,
    referrers_from_tag,
)
from cip.transport.auth import Authenticator
from cip.transport.counting import RequestCounter
from cip.transport.responses import error_from, transport_error
from cip.transport.scheme import SchemeProbe
from cip.transport.session import Session
from cip.transport.settings import HostSettings

_OCTET = "application/octet-stream"
_NETWORK_ERRORS = (aiohttp.ClientError, TimeoutError)
# Blob bytes are hashed as they arrive: ask for them exactly as stored, never re-encoded.
_NO_ENCODING = ("Accept-Encoding",)


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


class HttpRegistry:
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
        self._referrers_api: bool | None = None
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
        except _NETWORK_ERRORS as exc:
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

    async def ping(self) -> None:
        base = await self.base_url()
        # 401 means "speaks the API, wants credentials" (distribution-spec "Determining Support").
        await self._must("GET", f"{base}/v2/", "ping", ok=(200, 401), context=self._ctx(None))

    async def catalog(self) -> AsyncIterator[str]:
        """Every repository, following `Link` (Distribution 2.8.2 pages by 100 unless `n`)."""
        url: str | None = f"{await self.base_url()}/v2/_catalog"
        if self._catalog_page_size:
            url = f"{url}?n={self._catalog_page_size}"
        pages = Pages("catalog", self._ctx(None))
        while url is not None:
            response = await self._must("GET", url, "catalog", context=self._ctx(None))
            for name in strings(self._json(response, "catalog"), "repositories", pages.ctx):
                yield name
            url = pages.next(response.response)

    async def list_tags(self, repository: str) -> TagList:
        url: str | None = await self._url(repository, "tags/list")
        tags: list[str] = []
        listed: dict[str, ListedManifest] | None = None
        what = f"list tags of {repository}"
        ctx = self._ctx(repository)
        pages = Pages(what, ctx)
        while url is not None:
            response = await self._must("GET", url, what, context=ctx)
            body = self._json(response, what, repository)
            # Distribution 2.8.2: a repository whose manifests were all deleted has "tags": null.
            tags.extend(strings(body, "tags", ctx))
            # Google Container/Artifact Registry add {digest: {tag: [...], mediaType: ...}}.
            google = body.get("manifest")
            if google is not None:
                listed = listed or {}
                listed.update(google_manifests(google, ctx))
            url = pages.next(response.response)
        return TagList(repository, tuple(tags), listed)

    # -- manifests --------------------------------------------------------------------------

    async def head_manifest(self, repository: str, reference: str) -> ManifestInfo | None:
        url = await self._url(repository, f"manifests/{reference}")
        response = await self._send(
            "HEAD",
            url,
            f"HEAD manifest {repository}:{reference}",
            missing_ok=True,
            headers={"Accept": media.ACCEPT_MANIFESTS},
            context=self._ctx(repository, reference if ":" in reference else None),
        )
        if response is None:
            return None
        headers = response.headers
        digest = headers.get("docker-content-digest")
        if digest is None:
            if ":" not in reference:
                # Docker-Content-Digest is optional (distribution-spec "Pulling manifests").
                return (await self.get_manifest(repository, reference)).info()
            digest = reference
        ctx = self._ctx(repository, reference if ":" in reference else None)
        return manifest_info(
            headers, digest, reference, f"HEAD manifest {repository}:{reference}", ctx
        )

    async def get_manifest(self, repository: str, reference: str) -> Manifest:
        by_digest = ":" in reference
        ctx = self._ctx(repository, reference if by_digest else None)
        what = f"GET manifest {repository}{'@' if by_digest else ':'}{reference}"
        url = await self._url(repository, f"manifests/{reference}")
        headers = {"Accept": media.ACCEPT_MANIFESTS}
        try:
            async with self._session.request(
                "GET", url, headers=headers, allow_redirects=False
            ) as response:
                if response.status != 200:
                    raise error_from(response, await response.read(), what, **ctx)
                media.check_manifest_size(response.content_length or 0, **ctx)
                chunks: list[bytes] = []
                total = 0
                async for chunk in response.content.iter_any():
                    total += len(chunk)
                    media.check_manifest_size(total, **ctx)
                    chunks.append(chunk)
                announced = response.headers.get("docker-content-digest")
                header_type = response.headers.get("content-type")
        except _NETWORK_ERRORS as exc:
            raise transport_error(what, exc, ctx) from exc
        data = b"".join(chunks)
        if by_digest:
            digest = media.verify_digest(data, reference, what=what, **ctx)
        elif announced:
            digest = media.verify_digest(data, announced, what=what, **ctx)
        else:
            digest = media.compute_digest(data)
        # Parsed here, where the registry and image are known, so a manifest handed out can be
        # read by every caller and one that cannot is refused naming where it came from.
        kind = media.parse_manifest(data, header_type, **self._ctx(repository, digest)).media_type
        return Manifest(data, kind, digest)

    async def put_manifest(
        self, repository: str, reference: str, data: bytes, media_type: str
    ) -> str:
        ctx = self._ctx(repository, reference if ":" in reference else None)
        media.check_manifest_size(len(data), **ctx)
        media.refuse_schema1(media.effective_media_type(data, media_type), **ctx)
        what = f"PUT manifest {repository}:{reference}"
        digest = (
            media.verify_digest(data, reference, what=what, **ctx)
            if ":" in reference
            else media.compute_digest(data)
        )
        response = await self._must(
            "PUT",
            await self._url(repository, f"manifests/{reference}"),
            what,
            ok=(200, 201, 202),
            data=data,
            headers={"Content-Type": media_type},
            context=ctx,
        )
        stored = response.headers.get("docker-content-digest")
        if stored and stored.startswith("sha256:") and stored != digest:
            raise DigestMismatchError(
                f"{what}: registry stored {stored}, the bytes hash to {digest}", **ctx
            )
        return digest

    async def delete_manifest(self, repository: str, digest: str) -> None:
        """Delete by digest (needs `storage.delete.enabled` on Distribution)."""
        await self._must(
            "DELETE",
            await self._url(repository, f"manifests/{digest}"),
            f"DELETE manifest {repository}@{digest}",
            ok=(200, 202),
            context=self._ctx(repository, digest),
        )

    # -- blobs ------------------------------------------------------------------------------

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
                "GET", url, allow_redirects=True, skip_auto_headers=_NO_ENCODING
            ) as response:
                if response.status != 200:
                    raise error_from(response, await response.read(), what, **ctx)
                async for chunk in response.content.iter_chunked(chunk_size):
                    hasher.update(chunk)
                    yield chunk
        except _NETWORK_ERRORS as exc:
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
                headers = {"Content-Type": _OCTET, "Content-Length": str(len(data))}
            else:
                patch_headers = {"Content-Type": _OCTET}
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
        with contextlib.suppress(*_NETWORK_ERRORS, RegistryError):
            async with self._session.request("DELETE", URL(location, encoded=True)) as response:
                await response.read()

    # -- referrers --------------------------------------------------------------------------

    async def referrers(
        self, repository: str, digest: str, *, artifact_type: str | None = None
    ) -> list[Descriptor]:
        """OCI 1.1 referrers API; where it is missing (404), the `<alg>-<hex>` tag's index."""
        found = await self.subject_referrers(repository, digest, artifact_type)
        if found is None:
            # distribution-spec "Unavailable Referrers API": fall back to the tag schema.
            found = await referrers_from_tag(self, repository, digest)
        return [d for d in found if artifact_type in (None, d.artifact_type)]

    async def subject_referrers(
        self, repository: str, digest: str, artifact_type: str | None = None
    ) -> list[Descriptor] | None:
        if self._referrers_api is False:
            return None
        found = await self._referrers_api_list(repository, digest, artifact_type)
        self._referrers_api = found is not None
        return found

    async def _referrers_api_list(
        self, repository: str, digest: str, artifact_type: str | None
    ) -> list[Descriptor] | None:
        ctx = self._ctx(repository, digest)
        url: str | None = await self._url(repository, f"referrers/{digest}")
        params = {"artifactType": artifact_type} if artifact_type else None
        found: list[Descriptor] = []
        pages = Pages(f"referrers of {repository}@{digest}", ctx)
        while url is not None:
            response = await self._send(
                "GET", url, f"referrers of {repository}@{digest}", missing_ok=True,
                params=params, headers={"Accept": media.OCI_INDEX}, context=ctx,
            )  # fmt: skip
            if response is None:
                return None
            found.extend(media.parse_manifest(response.body, media.OCI_INDEX, **ctx).children)
            url, params = pages.next(response.response), None
        return found
