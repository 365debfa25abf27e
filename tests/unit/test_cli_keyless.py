"""Keyless flags through the CLI: every contradiction or unusable token is a usage error (exit
2) that names the flag, before any registry, Fulcio or Rekor is reached, and no token is shown."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.cli import REPO, run_cip
from tests.lab.sigstore_lab import make_token
from tests.trust.keyfiles import DATA, openssl_keypair

DEMO = REPO / "examples" / "demo"


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    shutil.copytree(DEMO, tmp_path / "demo")
    return tmp_path / "demo" / "promoter-manifest.yaml"


def _usage_error(*args: str, command: str = "run") -> str:
    done = run_cip(command, *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    return done.stderr


def test_unusable_identity_tokens_are_usage_errors_that_never_show_the_token(
    demo: Path, tmp_path: Path
) -> None:
    manifest = ("--manifest", str(demo))
    wrong_audience = make_token(aud="someone-else")
    stderr = _usage_error(*manifest, "--identity-token", wrong_audience)
    assert "audience is 'someone-else', not 'sigstore'" in stderr
    assert wrong_audience not in stderr
    assert "neither an identity token nor an existing file" in _usage_error(
        *manifest, "--identity-token", str(tmp_path / "missing-token")
    )
    garbage = tmp_path / "token"
    garbage.write_text("not a jwt")
    stderr = _usage_error(*manifest, "--identity-token", str(garbage))
    assert f"--identity-token={garbage}: not an OIDC identity token" in stderr
    assert "give --identity-token or --signer-account, not both" in _usage_error(
        *manifest,
        "--identity-token",
        make_token(),
        "--signer-account",
        "a@p.iam.gserviceaccount.com",
    )
    assert "not a service account email" in _usage_error(*manifest, "--signer-account", "nobody")


def test_keyless_flags_that_contradict_others_are_usage_errors(demo: Path, tmp_path: Path) -> None:
    manifest = ("--manifest", str(demo))
    key = str(DATA / "pemsigstorekey.key")
    assert "give one of them" in _usage_error(
        *manifest, "--signing-key", key, "--identity-token", make_token()
    )
    assert "--signature-format=bundle is for keyless signing, which is off" in _usage_error(
        *manifest, "--signature-format=bundle"
    )
    assert "--sigstore-trust-config is for keyless signing, which is off" in _usage_error(
        *manifest, "--sigstore-trust-config", str(tmp_path / "x.json")
    )
    bad = tmp_path / "trust.json"
    bad.write_text('{"mediaType": "nonsense"}')
    stderr = _usage_error(
        *manifest, "--identity-token", make_token(), "--sigstore-trust-config", str(bad)
    )
    assert f"--sigstore-trust-config={bad}: not a sigstore client trust config" in stderr
    assert "signing flags" in _usage_error(
        *manifest, "--identity-token", make_token(), "--parse-only"
    )
    # Runs verify staging with the identity policy, whose flags come in pairs there too.
    assert "give one of --certificate-oidc-issuer" in _usage_error(
        *manifest, "--certificate-identity", "x"
    )


def test_sigcheck_identity_policy_flags_come_in_pairs(demo: Path, tmp_path: Path) -> None:
    manifest = ("--manifest", str(demo))
    assert "give one of --certificate-oidc-issuer and --certificate-oidc-issuer-regexp" in (
        _usage_error(*manifest, "--certificate-identity", "x", command="sigcheck")
    )
    assert "give one of --certificate-identity and --certificate-identity-regexp" in _usage_error(
        *manifest, "--certificate-identity", "x", "--certificate-identity-regexp", "y",
        "--certificate-oidc-issuer", "z", command="sigcheck",
    )  # fmt: skip
    assert "not a regular expression" in _usage_error(
        *manifest, "--certificate-identity-regexp", "(", "--certificate-oidc-issuer", "z",
        command="sigcheck",
    )  # fmt: skip
    done = run_cip(
        "sigcheck", *manifest, "--verify-key", str(openssl_keypair(tmp_path).public),
        "--certificate-identity", "x", "--certificate-oidc-issuer", "z", "--output=json",
    )  # fmt: skip
    assert done.returncode == 2
    assert "give one" in json.loads(done.stdout)["errors"][0]["message"]


def test_sigcheck_refuses_bundle_checks_it_cannot_do_yet(demo: Path) -> None:
    assert "checking bundles is not supported yet" in _usage_error(
        "--manifest", str(demo), "--signature-format=bundle", command="sigcheck"
    )
