"""Signing and replication through the `Registry` protocol, on a real registry and a layout."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

from cip.registry.client import Registry
from cip.trust.attached import SIGNATURE_ANNOTATION, signature_tag
from cip.trust.keys import load_private_key
from cip.trust.signer import KeySigner, sign_layer
from cip.trust.signing import Place, SignatureService
from cip.trust.simplesigning import parse_payload
from cip.trust.store import AttachedWriter, Incoming, read_attached, read_blob
from tests.lab.conftest import Backend
from tests.lab.images import oci_image, oci_index, push
from tests.trust.keyfiles import openssl_keypair, openssl_verifies


async def _signatures(registry: Registry, repository: str, digest: str) -> list[tuple[bytes, str]]:
    manifest = await read_attached(registry, repository, signature_tag(digest))
    assert manifest is not None, f"no .sig for {digest}"
    return [
        (
            await read_blob(registry, repository, layer.digest),
            layer.annotations[SIGNATURE_ANNOTATION],
        )
        for layer in manifest.parse().layers
    ]


def test_index_and_children_signed_once_replicated_and_verified_by_openssl(
    backend: Backend, tmp_path: Path
) -> None:
    ours, theirs = openssl_keypair(tmp_path / "ours"), openssl_keypair(tmp_path / "theirs")
    signer = KeySigner(load_private_key(str(ours.private)))
    other = KeySigner(load_private_key(str(theirs.private)))
    index = oci_index(7)
    digests = [index.digest, *(child.digest for child in index.children)]

    async def scenario() -> None:
        async with backend.open() as registry:
            for repository in ("staging/app", "prod/app", "mirror/app"):
                await push(registry, repository, index, "v1")
            # Staging carries a signature by another key for the index: merged in first.
            staged = sign_layer(other, b"their payload")
            await AttachedWriter().merge(
                registry, "staging/app", signature_tag(index.digest),
                [Incoming(staged.descriptor, staged.payload)],
            )  # fmt: skip
            service = SignatureService(signer, annotations={"team": "release"})
            primary = Place(registry, "prod/app")
            await service.sign(primary, index.digest, "registry.example/app",
                               Place(registry, "staging/app"))  # fmt: skip
            assert service.stats.signed == 3
            for digest in digests:
                layers = await _signatures(registry, "prod/app", digest)
                ours_only = [(p, s) for p, s in layers if p != b"their payload"]
                assert len(ours_only) == 1
                data, signature = ours_only[0]
                claims = parse_payload(data)
                assert claims.digest == digest
                assert claims.docker_reference == "registry.example/app"
                assert claims.optional == {"team": "release"}
                assert openssl_verifies(ours.public, data, signature, tmp_path / digest[7:19])
                tampered = data.replace(b"release", b"releasE")
                assert not openssl_verifies(ours.public, tampered, signature, tmp_path / "t")
            first = await _signatures(registry, "prod/app", index.digest)
            assert first[0][0] == b"their payload"  # staging's layer first, then ours

            # A second run signs nothing: the tag already holds our signature.
            again = SignatureService(signer, annotations={"team": "release"})
            await again.sign(primary, index.digest, "registry.example/app")
            assert again.stats.signed == 0
            assert await _signatures(registry, "prod/app", index.digest) == first

            mirror = Place(registry, "mirror/app")
            await again.replicate(primary, mirror, index.digest)
            for digest in digests:
                assert await _signatures(registry, "mirror/app", digest) == (
                    await _signatures(registry, "prod/app", digest)
                )
            replicated = again.writer.stats.manifests_written
            await SignatureService(signer).replicate(primary, mirror, index.digest)
            assert again.writer.stats.manifests_written == replicated

    asyncio.run(scenario())


def test_concurrent_merges_into_one_tag_lose_nothing(backend: Backend, tmp_path: Path) -> None:
    signer = KeySigner(load_private_key(str(openssl_keypair(tmp_path).private)))
    image = oci_image(8)

    async def scenario() -> None:
        async with backend.open() as registry:
            await push(registry, "app", image, "v1")
            writer = AttachedWriter()
            layers = [sign_layer(signer, f"payload {i}".encode()) for i in range(6)]
            await asyncio.gather(
                *(
                    writer.merge(
                        registry,
                        "app",
                        signature_tag(image.digest),
                        [Incoming(layer.descriptor, layer.payload)],
                    )
                    for layer in layers
                )
            )
            found = await _signatures(registry, "app", image.digest)
            assert sorted(p for p, _ in found) == sorted(layer.payload for layer in layers)
            manifest = await read_attached(registry, "app", signature_tag(image.digest))
            assert manifest is not None
            config_digest = json.loads(manifest.data)["config"]["digest"]
            config = json.loads(await read_blob(registry, "app", config_digest))
            assert len(config["rootfs"]["diff_ids"]) == 6
            assert all(base64.b64decode(s) for _, s in found)

    asyncio.run(scenario())
