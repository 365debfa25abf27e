"""The Registry protocol over the OCI Distribution API, on aiohttp.

One `HttpRegistry` per `host[:port]`: that is the unit that owns a connection pool, TLS settings,
a token cache and a rate limit. The session is built by `connect.create_http_registry` from the
transport stack (`cip.transport`), so retries, auth and rate limits sit under this code and it
only speaks the Distribution API.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from cip.errors import DigestMismatchError
from cip.oci import media
from cip.oci.media import Descriptor
from cip.registry.answers import Pages, google_manifests, manifest_info, strings
from cip.registry.client import (
    ListedManifest,
    Manifest,
    ManifestInfo,
    TagList,
    referrers_from_tag,
)
from cip.registry.http_base import NETWORK_ERRORS
from cip.registry.http_blobs import HttpBlobs
from cip.transport.responses import error_from, transport_error


class HttpRegistry(HttpBlobs):
    """A Distribution registry host; repositories are paths below it."""

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
        except NETWORK_ERRORS as exc:
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
        if self._referrers_api is None:
            # Concurrent callers wait for the first answer: a registry without the API costs
            # one request, not one per digest asked about before the first 404 came back.
            async with self._referrers_probe:
                if self._referrers_api is None:
                    found = await self._referrers_api_list(repository, digest, artifact_type)
                    self._referrers_api = found is not None
                    return found
        if self._referrers_api is False:
            return None
        return await self._referrers_api_list(repository, digest, artifact_type)

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
