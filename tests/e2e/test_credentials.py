"""Credentials through the CLI against a real registry with htpasswd Basic auth: a refusal names
the source of the credentials sent (never the secret), a malformed file names its line, and
skopeo's --authfile is accepted beside REGISTRY_AUTH_FILE."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from cip.registry.connect import open_http_registry
from cip.transport.credentials import CredentialStore, EnvCredentials, env_variable
from tests.cli import run_cip
from tests.e2e.test_dry_run import manifest
from tests.e2e.test_promote import dmap
from tests.lab.auth_lab import basic_auth_config, htpasswd
from tests.lab.images import Image, oci_image, push
from tests.lab.registry_lab import LabRegistry

PASSWORD = "s3cret-Basic-Pa55-41"
WRONG = "wrong-Pa55-for-alice-77"


def auth_json(path: Path, host: str, password: str) -> Path:
    token = base64.b64encode(f"alice:{password}".encode()).decode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"auths": {host: {"auth": token}}}, indent=1))
    return path


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """This process's environment without any credential source, plus `extra`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("CIP_AUTH_")
        and key not in ("REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "DOCKER_CONFIG")
    }
    return {**env, "HOME": str(tmp_path / "home"), **extra}


@pytest.fixture
def guarded(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> tuple[LabRegistry, Path, Image]:
    """A Basic-auth registry holding staging/app:1, and a manifest promoting it to prod/."""
    lab = registry_factory(basic_auth_config(htpasswd(tmp_path / "htpasswd", {"alice": PASSWORD})))
    image = oci_image(31)
    store = CredentialStore([EnvCredentials({env_variable(lab.host): f"alice:{PASSWORD}"})])

    async def seed() -> None:
        async with open_http_registry(lab.host, credentials=store) as client:
            await push(client, "staging/app", image, "1")

    asyncio.run(seed())
    path = manifest(
        tmp_path / "m.yaml", f"{lab.host}/staging", [f"{lab.host}/prod"], dmap("app", image, "1")
    )
    return lab, path, image


def test_refused_credentials_name_their_source_and_never_the_secret(
    guarded: tuple[LabRegistry, Path, Image], tmp_path: Path
) -> None:
    lab, path, _ = guarded
    docker = tmp_path / "docker"
    auth_json(docker / "config.json", lab.host, WRONG)
    done = run_cip(
        "run", "--manifest", str(path), env=clean_env(tmp_path, DOCKER_CONFIG=str(docker))
    )
    assert done.returncode == 1, done.stderr
    assert (
        f"{lab.host} refused the credentials from DOCKER_CONFIG {docker}/config.json (auths)"
        in done.stdout
    )
    assert WRONG not in done.stdout + done.stderr
    assert base64.b64encode(f"alice:{WRONG}".encode()).decode() not in done.stdout + done.stderr

    none = run_cip("run", "--manifest", str(path), env=clean_env(tmp_path))
    assert none.returncode == 1, none.stderr
    assert f"{lab.host} requires credentials and none were found (looked in: " in none.stdout
    assert f"docker config {tmp_path}/home/.docker/config.json" in none.stdout


def test_authfile_flag_beside_registry_auth_file(
    guarded: tuple[LabRegistry, Path, Image], tmp_path: Path
) -> None:
    lab, path, _ = guarded
    right = auth_json(tmp_path / "right" / "auth.json", lab.host, PASSWORD)
    wrong = auth_json(tmp_path / "wrong" / "auth.json", lab.host, WRONG)
    by_variable = run_cip(
        "run", "--manifest", str(path), env=clean_env(tmp_path, REGISTRY_AUTH_FILE=str(right))
    )
    assert by_variable.returncode == 0, by_variable.stdout + by_variable.stderr
    assert "copy 1," in by_variable.stdout
    # --authfile wins over the variable, as in skopeo.
    by_flag = run_cip(
        "run", "--manifest", str(path), "--authfile", str(right),
        env=clean_env(tmp_path, REGISTRY_AUTH_FILE=str(wrong)),
    )  # fmt: skip
    assert by_flag.returncode == 0, by_flag.stdout + by_flag.stderr
    refused = run_cip(
        "run", "--manifest", str(path), "--authfile", str(wrong),
        env=clean_env(tmp_path, REGISTRY_AUTH_FILE=str(right)),
    )  # fmt: skip
    assert refused.returncode == 1
    assert f"refused the credentials from --authfile {wrong} (auths)" in refused.stdout
    missing = run_cip("run", "--manifest", str(path), "--authfile", str(tmp_path / "nope.json"))
    assert missing.returncode == 2
    assert "nope.json" in missing.stderr


def test_a_malformed_config_json_is_named_with_its_line(
    guarded: tuple[LabRegistry, Path, Image], tmp_path: Path
) -> None:
    lab, path, _ = guarded
    docker = tmp_path / "docker"
    config = auth_json(docker / "config.json", lab.host, PASSWORD)
    text = config.read_text()
    config.write_text(text.replace('"auth":', '"auth"', 1))  # a colon missing on line 4
    done = run_cip(
        "run", "--manifest", str(path), env=clean_env(tmp_path, DOCKER_CONFIG=str(docker))
    )
    assert done.returncode == 1, done.stderr
    assert (
        f"{config}:4:11: invalid JSON (Expecting ':' delimiter) in DOCKER_CONFIG {config}"
        in done.stdout
    )
    assert base64.b64encode(f"alice:{PASSWORD}".encode()).decode() not in done.stdout
