"""Reading back what cip signed on lab registries, and checking it as a consumer would."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from pathlib import Path

from cip.registry.connect import open_http_registry
from cip.trust.attached import SIGNATURE_ANNOTATION, signature_tag
from cip.trust.simplesigning import parse_payload
from cip.trust.store import read_attached, read_blob
from tests.e2e.conftest import push_images
from tests.e2e.test_dry_run import manifest
from tests.e2e.test_promote import dmap
from tests.lab.images import Image, docker_manifest_list, oci_image, oci_index
from tests.lab.registry_lab import LabRegistry
from tests.trust.keyfiles import KeyPair, openssl_keypair, openssl_verifies

Layer = tuple[bytes, str]  # (payload, base64 signature)


def all_digests(images: Iterable[Image]) -> list[str]:
    """Every digest promotion signs: each image and, for an index, each child."""
    out: list[str] = []
    for image in images:
        out.append(image.digest)
        out.extend(all_digests(image.children))
    return out


def signature_layers(lab: LabRegistry, repository: str, digest: str) -> list[Layer] | None:
    """The layers of `repository:sha256-<hex>.sig`, or None when the tag is missing."""

    async def read() -> list[Layer] | None:
        async with open_http_registry(lab.host) as client:
            manifest = await read_attached(client, repository, signature_tag(digest))
            if manifest is None:
                return None
            return [
                (
                    await read_blob(client, repository, layer.digest),
                    layer.annotations.get(SIGNATURE_ANNOTATION, ""),
                )
                for layer in manifest.parse().layers
            ]

    return asyncio.run(read())


def verified_by(public: Path, layers: list[Layer], digest: str, scratch: Path) -> list[Layer]:
    """The layers whose signature openssl verifies with `public` and whose payload is `digest`."""
    good = []
    for index, (data, signature) in enumerate(layers):
        try:
            if parse_payload(data).digest != digest:
                continue
        except ValueError:
            continue  # another signer's layer that is not a simple-signing payload
        if openssl_verifies(public, data, signature, scratch / f"{digest[7:19]}-{index}"):
            good.append((data, signature))
    return good


def delete_signature(lab: LabRegistry, repository: str, digest: str) -> None:
    """Remove the `.sig` tag (Distribution deletes tags with the manifest they point at)."""

    async def delete() -> None:
        async with open_http_registry(lab.host) as client:
            info = await client.head_manifest(repository, signature_tag(digest))
            assert info is not None
            await client.delete_manifest(repository, info.digest)

    asyncio.run(delete())


def signing_lab(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> tuple[LabRegistry, list[LabRegistry], dict[str, Image], Path, KeyPair]:
    staging = registry_factory()
    mirrors = [registry_factory() for _ in range(3)]
    catalog = {"app": oci_image(301), "multi": oci_index(302), "list": docker_manifest_list(303)}
    push_images(staging, [(f"stage/{n}", image, "src") for n, image in catalog.items()])
    images = "".join(dmap(name, image, "1.0") for name, image in catalog.items())
    path = manifest(
        tmp_path / "m.yaml", f"{staging.host}/stage", [f"{m.host}/prod" for m in mirrors], images
    )
    return staging, mirrors, catalog, path, openssl_keypair(tmp_path / "keys")


def assert_signed_once_everywhere(
    mirrors: list[LabRegistry], catalog: dict[str, Image], keys: KeyPair, scratch: Path
) -> None:
    for mirror in mirrors:
        for name, image in catalog.items():
            for digest in all_digests([image]):
                layers = signature_layers(mirror, f"prod/{name}", digest)
                assert layers is not None, f"{mirror.host}/prod/{name}@{digest} unsigned"
                good = verified_by(keys.public, layers, digest, scratch)
                assert len(good) == 1 == len(layers), (mirror.host, name, digest, layers)
