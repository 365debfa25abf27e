"""`cip run --vuln-severity-threshold`: vulnerable images are held back with the `vulnerable`
verdict and their worst finding, the rest is promoted, and a dry run shows the verdicts."""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from cip.registry.layout import open_layout
from tests.e2e.conftest import push_images, run_cip, writes
from tests.e2e.vuln_lab import (
    APP,
    CLEAN,
    DB,
    MULTI,
    Scanned,
    logging_trivy,
    scanned,
    trivy_binary,
    trivy_cache,
    trivy_env,
)
from tests.e2e.vuln_repo import VulnRepo, open_vuln_repo
from tests.lab.images import Image, bytes_blob, push
from tests.lab.registry_lab import LabRegistry
from tests.unit.conftest import write

__all__ = ["scanned"]
TITLE = "org.opencontainers.image.title"


@pytest.fixture
def repo(registry_factory: Callable[..., LabRegistry], tmp_path: Path) -> VulnRepo:
    return open_vuln_repo(registry_factory, tmp_path / "repo")


def reports_for(scanned: Scanned, folder: Path, *images: Image) -> Path:
    for image in images:
        scanned.write_named(folder, image)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def destinations(document: dict[str, object], image: str) -> dict[str, list[dict[str, object]]]:
    images = document["images"]
    assert isinstance(images, list)
    [found] = [i for i in images if i["image"] == image]
    return {verdict: entries for verdict, entries in found["destinations"].items() if entries}


def test_vulnerable_images_are_held_back_and_the_rest_is_promoted(
    repo: VulnRepo, scanned: Scanned, tmp_path: Path
) -> None:
    reports = reports_for(scanned, tmp_path / "reports", APP, CLEAN, *MULTI.children)
    flags = ("--vuln-severity-threshold=HIGH", f"--vuln-report={reports}")
    mark = repo.production.mark()
    dry = repo.run(*flags)
    assert dry.returncode == 1, dry.stdout + dry.stderr
    assert writes(repo.production, mark) == []
    out = dry.stdout
    assert (
        f"  vulnerable app@{APP.digest} (k8s/images/team/images.yaml:{repo.line_of(APP)}:5): "
        "CVE-2099-0001 CRITICAL in openssl 3.0.11-1~deb12u2, fixed in 3.0.13-1~deb12u1 "
        f"(Trivy JSON report by trivy 0.76.0 {reports}/sha256-{APP.digest[7:]}.json); 1 finding "
        "with a fix at or above HIGH: held back"
    ) in out
    assert f"  vulnerable multi@{MULTI.digest}" in out
    assert "copy 1, add-tag 0, present 1" in out and "vulnerable 2 (dry run" in out
    assert "held back by the vulnerability gate" in dry.stderr  # the validate phase says so

    done = repo.run(*flags, "--confirm", "--output=json")
    assert done.returncode == 1, done.stderr
    document = json.loads(done.stdout)
    assert document["edges"]["vulnerable"] == 2 and document["edges"]["copy"] == 1
    assert document["promotion"] == "partially promoted"
    [held] = destinations(document, "app")["vulnerable"]
    assert held["registry"] == f"{repo.production.host}/prod" and held["tags"] == ["1.0"]
    assert held["vulnerability"] == {
        "id": "CVE-2099-0001",
        "severity": "CRITICAL",
        "package": "openssl",
        "installed": "3.0.11-1~deb12u2",
        "fixed": "3.0.13-1~deb12u1",
        "source": f"Trivy JSON report by trivy 0.76.0 {reports}/sha256-{APP.digest[7:]}.json",
        "platform": None,
        "counted": 1,
    }
    [multi] = destinations(document, "multi")["vulnerable"]
    amd64, arm64 = (child.digest[7:19] for child in MULTI.children)
    assert multi["vulnerability"]["platform"] == f"linux/amd64 ({amd64}), linux/arm64 ({arm64})"
    assert multi["vulnerability"]["counted"] == 2
    assert list(destinations(document, "clean")) == ["copy"]
    written = writes(repo.production, mark)
    assert any(line.startswith("PUT /v2/prod/clean/manifests/1.0") for line in written), written
    assert not [line for line in written if "/prod/app/" in line or "/prod/multi/" in line]


@pytest.mark.parametrize(
    ("case", "extra", "held", "message"),
    [
        ("fixable only", ["--vuln-allowlist=ALLOW"], [], None),
        ("unfixed", ["--vuln-allowlist=ALLOW", "--vuln-include-unfixed"], ["app", "multi"],
         "CVE-2099-0003 HIGH in curl 7.88.1-10+deb12u5, no fix named"),
        ("expired", ["--vuln-allowlist=EXPIRED"], ["app", "multi"],
         "CVE-2099-0001 CRITICAL in openssl"),
        ("wrong digest", ["--vuln-allowlist=ALLOW", "WRONG"], ["app"],
         "no vulnerability report, scan or attestation is about it (--on-missing-report=fail)"),
        ("missing, fail", ["--vuln-allowlist=ALLOW", "MISSING"], ["app"],
         "no vulnerability report, scan or attestation is about it (--on-missing-report=fail)"),
        ("missing, warn", ["--vuln-allowlist=ALLOW", "MISSING", "--on-missing-report=warn"], [],
         None),
    ],
)  # fmt: skip
def test_each_rule_of_the_policy_decides_what_is_held_back(
    repo: VulnRepo,
    scanned: Scanned,
    tmp_path: Path,
    case: str,
    extra: list[str],
    held: list[str],
    message: str | None,
) -> None:
    allow = write(tmp_path / "allow.yaml", "vulnerabilities:\n  - id: CVE-2099-0001\n")
    expired = write(
        tmp_path / "expired.yaml",
        "vulnerabilities:\n  - id: CVE-2099-0001\n    expired_at: 2001-01-01\n",
    )
    reports = reports_for(scanned, tmp_path / "reports", CLEAN, *MULTI.children)
    if "WRONG" in extra:
        scanned.write(reports, f"sha256-{APP.digest[7:]}.json", CLEAN)
    elif "MISSING" not in extra:
        scanned.write_named(reports, APP)
    flags = [
        f.replace("ALLOW", str(allow)).replace("EXPIRED", str(expired))
        for f in extra
        if f not in ("WRONG", "MISSING")
    ]
    done = repo.run("--vuln-severity-threshold=HIGH", f"--vuln-report={reports}", *flags,
                    "--output=json")  # fmt: skip
    document = json.loads(done.stdout)
    assert done.returncode == (1 if held else 0), (case, done.stderr)
    vulnerable = sorted(
        image["image"] for image in document["images"] if image["destinations"]["vulnerable"]
    )
    assert vulnerable == held, case
    if message is not None:
        [entry] = destinations(document, "app")["vulnerable"]
        assert isinstance(entry["error"], str) and message in entry["error"], entry["error"]
    warnings = [w["message"] for w in document["warnings"] if w["image"] == "app"]
    if case == "expired":
        assert any("allowlist entry CVE-2099-0001 expired on 2001-01-01" in w for w in warnings)
        expiries = [w for w in document["warnings"] if w["file"] == str(expired)]
        assert sorted(w["image"] for w in expiries) == ["app", "multi"]  # once per image
        [warning] = [w for w in expiries if w["image"] == "app"]
        assert warning["line"] == 2 and warning["digest"] == APP.digest
    if case == "wrong digest":
        assert any(f"is about {CLEAN.digest}: not used for {APP.digest}" in w for w in warnings)
    if case == "missing, warn":
        assert warnings == [
            "no vulnerability report, scan or attestation is about it (--on-missing-report=warn)"
        ]
        assert list(destinations(document, "app")) == ["copy"]


def database_artifact() -> Image:
    """The test database as Trivy's registry artifact (what `--db-repository` serves): one
    tar.gz layer of trivy.db and metadata.json."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name in ("trivy.db", "metadata.json"):
            archive.add(DB / name, arcname=name)
    layer = bytes_blob(out.getvalue(), "application/vnd.aquasec.trivy.db.layer.v1.tar+gzip")
    config = bytes_blob(b"{}", "application/vnd.aquasec.trivy.config.v1+json")
    body = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config.descriptor(),
        # trivy names the file it unpacks from the layer's title (oras' convention)
        "layers": [{**layer.descriptor(), "annotations": {TITLE: "db.tar.gz"}}],
    }
    return Image(json.dumps(body).encode(), str(body["mediaType"]), (config, layer))


def test_trivy_scans_each_source_digest_once_and_fetches_its_database_once(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging, mirror_a, mirror_b = registry_factory(), registry_factory(), registry_factory()
    push_images(
        staging,
        [("app", APP, "1.0"), ("multi", MULTI, "1.0"), ("clean", CLEAN, "1.0"),
         ("app-copy", APP, "1.0")],  # the same digest under another name: the same content
    )  # fmt: skip
    push_images(staging, [("mirror/trivy-db", database_artifact(), "2")])
    images = "".join(
        f'- name: {name}\n  dmap:\n    "{image.digest}": ["1.0", "latest"]\n'
        for name, image in (("app", APP), ("multi", MULTI), ("clean", CLEAN), ("app-copy", APP))
    )
    registries = f"registries:\n- name: {staging.host}\n  src: true\n"
    # Two manifests promote the same digests to two mirrors each, under two tags.
    for name in ("a", "b"):
        write(
            tmp_path / f"{name}.yaml",
            registries + f"- name: {mirror_a.host}/{name}\n- name: {mirror_b.host}/{name}\n"
            "images:\n" + images,
        )
    trivy, calls = logging_trivy(tmp_path / "bin", trivy_binary())
    empty_cache = tmp_path / "cache"  # nothing in it: the database comes from the registry
    marks = {lab.host: lab.mark() for lab in (mirror_a, mirror_b)}
    done = run_cip(
        "run", f"--manifest={tmp_path / 'a.yaml'}", f"--manifest={tmp_path / 'b.yaml'}",
        "--vuln-severity-threshold=CRITICAL", f"--trivy={trivy}",
        f"--trivy-db-repository={staging.host}/mirror/trivy-db:2", "--confirm",
        env=trivy_env(empty_cache),
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Edges 32: copy 8, " in done.stdout and "vulnerable 24" in done.stdout, done.stderr
    downloads = [c for c in calls() if "--download-db-only" in c]
    assert len(downloads) == 1 and f"{staging.host}/mirror/trivy-db:2" in downloads[0]
    for mirror in (mirror_a, mirror_b):
        written = writes(mirror, marks[mirror.host])
        for name in ("a", "b"):
            assert f"PUT /v2/{name}/clean/manifests/latest" in written, written
        assert not [w for w in written if "/app" in w or "/multi/" in w]
    scans = sorted(c[-1].rsplit("@", 1)[1] for c in calls() if "--download-db-only" not in c)
    assert scans == sorted(i.digest for i in (APP, CLEAN, *MULTI.children))  # once each
    assert (empty_cache / "db" / "trivy.db").exists()
    for mirror in (mirror_a, mirror_b):
        for name in ("a", "b"):
            assert (
                mirror.manifest_exists(f"{name}/clean", "latest")
                if hasattr(mirror, "manifest_exists")
                else True
            )


def test_images_from_an_oci_layout_are_scanned_from_the_folder(tmp_path: Path) -> None:
    async def fill() -> None:
        layout = open_layout(tmp_path / "staging")
        await push(layout, "app", APP, "1.0")
        await push(layout, "clean", CLEAN, "1.0")

    asyncio.run(fill())
    path = write(
        tmp_path / "promoter.yaml",
        "registries:\n- name: oci:staging\n  src: true\n- name: oci:production\nimages:\n"
        f'- name: app\n  dmap:\n    "{APP.digest}": ["1.0"]\n'
        f'- name: clean\n  dmap:\n    "{CLEAN.digest}": ["1.0"]\n',
    )
    trivy, calls = logging_trivy(tmp_path / "bin", trivy_binary())
    done = run_cip(
        "run", f"--manifest={path}", "--vuln-severity-threshold=HIGH", f"--trivy={trivy}",
        "--trivy-offline", "--confirm", env=trivy_env(trivy_cache(tmp_path / "cache")),
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"vulnerable app@{APP.digest}" in done.stdout
    assert "CVE-2099-0001 CRITICAL in openssl" in done.stdout
    inputs = sorted(c[c.index("--input") + 1] for c in calls())
    assert inputs == sorted(
        f"{tmp_path / 'staging' / name}@{image.digest}"
        for name, image in (("app", APP), ("clean", CLEAN))
    )
    assert (tmp_path / "production" / "clean" / "index.json").exists()
    assert not (tmp_path / "production" / "app").exists()
