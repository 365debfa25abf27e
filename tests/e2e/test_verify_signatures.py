"""`cip verify` with a verify policy: every destination digest's signature, as data."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from cip.trust.attached import signature_tag
from tests.e2e.conftest import run_cip
from tests.e2e.signatures import delete_signature, signing_lab
from tests.e2e.test_dry_run import manifest
from tests.e2e.test_promote import dmap
from tests.lab.registry_lab import LabRegistry
from tests.trust.keyfiles import openssl_keypair


def test_verify_with_a_key_names_a_deleted_and_a_replaced_mirror_signature(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging, mirrors, catalog, path, keys = signing_lab(registry_factory, tmp_path)
    done = run_cip("run", "--manifest", str(path), "--confirm", "--signing-key", str(keys.private))
    assert done.returncode == 0, done.stdout + done.stderr
    verify = ("verify", "--manifest", str(path))
    policy = ("--verify-key", str(keys.public))
    clean = run_cip(*verify, *policy)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    # 8 digests (an index's children included) on 3 destinations.
    assert "Signatures: 24 digests checked, 0 not verified" in clean.stdout

    child = catalog["multi"].children[1].digest
    delete_signature(mirrors[1], "prod/multi", child)
    app = catalog["app"].digest
    delete_signature(mirrors[2], "prod/app", app)
    # The third mirror's app signed anew by another key: a signature is there, but not ours.
    other = openssl_keypair(tmp_path / "other", "other")
    alone = manifest(
        tmp_path / "alone.yaml",
        f"{staging.host}/stage",
        [f"{mirrors[2].host}/prod"],
        dmap("app", catalog["app"], "1.0"),
    )
    resigned = run_cip(
        "run", "--manifest", str(alone), "--confirm", "--signing-key", str(other.private)
    )
    assert resigned.returncode == 0, resigned.stdout + resigned.stderr

    unchecked = run_cip(*verify)  # without a policy, signatures are not read
    assert unchecked.returncode == 0, unchecked.stdout + unchecked.stderr
    assert "Signatures" not in unchecked.stdout
    assert (
        json.loads(run_cip(*verify, "--output=json").stdout)["verification"]["signatures"] is None
    )

    found = run_cip(*verify, *policy)
    assert found.returncode == 1, found.stdout + found.stderr
    assert "Signatures not verified (2):" in found.stdout
    assert (
        f"missing    {mirrors[1].host}/prod/multi@{child}: no {signature_tag(child)} tag "
        f"(child of multi@{catalog['multi'].digest})"
    ) in found.stdout
    assert f"invalid    {mirrors[2].host}/prod/app@{app}: " in found.stdout
    assert (
        "Signatures: 24 digests checked, 2 not verified (missing 1, invalid 1, unreadable 0)"
        in found.stdout
    )
    assert "0 not in place" in found.stdout  # every edge is in place: only signatures fail

    document = run_cip(*verify, *policy, "--output=json")
    assert document.returncode == 1
    signatures = json.loads(document.stdout)["verification"]["signatures"]
    assert signatures["not_verified"] == {"missing": 1, "invalid": 1, "unreadable": 0}
    assert [(g["registry"], g["image"], g["digest"], g["problem"], g["parent"]) for g in signatures["gaps"]] == [
        (f"{mirrors[2].host}/prod", "app", app, "invalid", None),
        (f"{mirrors[1].host}/prod", "multi", child, "missing", catalog["multi"].digest),
    ]  # fmt: skip

    saved = tmp_path / "verify.json"
    saved.write_text(document.stdout)
    merged = run_cip("verify", "--merge", str(saved), "--output=json")
    assert merged.returncode == 1, merged.stdout + merged.stderr
    assert json.loads(merged.stdout)["verification"]["signatures"]["not_verified"]["invalid"] == 1
    as_text = run_cip("verify", "--merge", str(saved))
    assert "Signatures: 24 digests checked (missing 1, invalid 1, unreadable 0)" in as_text.stdout

    # The repair sigcheck makes is what verify then accepts.
    repaired = run_cip("sigcheck", "--manifest", str(path), *policy, "--confirm")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    after = run_cip(*verify, *policy)
    assert after.returncode == 0, after.stdout + after.stderr


def test_verify_refuses_policy_flags_that_do_not_make_a_policy(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("registries:\n- name: gcr.io/s\n  src: true\n- name: gcr.io/d\nimages: []\n")
    half = run_cip("verify", "--manifest", str(path), "--certificate-identity", "a@b.c")
    assert half.returncode == 2
    assert "--certificate-oidc-issuer" in half.stderr
    both = run_cip(
        "verify", "--manifest", str(path), "--verify-key", str(path),
        "--certificate-identity", "a@b.c", "--certificate-oidc-issuer", "https://x",
    )  # fmt: skip
    assert both.returncode == 2 and "give one" in both.stderr
    trust = run_cip("verify", "--manifest", str(path), "--sigstore-trust-config", str(path))
    assert trust.returncode == 2 and "--certificate-identity" in trust.stderr
    merge = run_cip("verify", "--merge", str(path), "--verify-key", str(path))
    assert merge.returncode == 2 and "verify policy" in merge.stderr
