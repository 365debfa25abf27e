"""`--ca-file` through the CLI against a registry serving TLS with its own certificate: a file
that is no certificate bundle is named at start-up, before any registry is contacted."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import run_cip
from tests.e2e.test_dry_run import LOST, manifest
from tests.lab.registry_lab import LabRegistry, self_signed_tls


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("just some text\n", "NO_CERTIFICATE_OR_CRL_FOUND"),
        ("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n", "PEM"),
    ],
)
def test_a_ca_file_that_is_no_certificate_bundle_is_named_before_any_request(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path, content: str, reason: str
) -> None:
    lab = registry_factory(self_signed_tls(tmp_path / "tls"))
    path = manifest(
        tmp_path / "m.yaml", f"{lab.host}/staging", [f"{lab.host}/prod"],
        f'- name: app\n  dmap:\n    "{LOST}": ["1"]\n',
    )  # fmt: skip
    wrong = tmp_path / "ca.pem"
    wrong.write_text(content)
    mark = lab.mark()
    done = run_cip("run", "--manifest", str(path), "--ca-file", str(wrong))
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith(f"error: --ca-file {wrong}: not a PEM certificate bundle (OpenSSL: ")
    assert reason in line
    assert lab.requests_since(mark) == []
    assert done.stdout == ""

    right = run_cip("run", "--manifest", str(path), "--ca-file", str(tmp_path / "tls/cert.pem"))
    assert right.returncode == 1, right.stderr  # the digest is lost: the registry was read
    assert f"lost      app@{LOST}" in right.stdout
