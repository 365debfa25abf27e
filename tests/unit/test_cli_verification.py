"""Staging's verification flags on `cip run`: a flag that means nothing without a policy, or a
policy that cannot be used, is a usage error (exit 2) naming the flag, before any registry is
read."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli import run_cip
from tests.trust.keyfiles import openssl_keypair
from tests.unit.test_cli_keyless import _usage_error, demo

__all__ = ["demo"]


def test_policy_flags_without_a_policy_are_refused(demo: Path) -> None:
    manifest = ("--manifest", str(demo))
    stderr = _usage_error(*manifest, "--require-signature", "--provenance-builder-id", "x")
    assert "--require-signature, --provenance-builder-id: needs a verification policy" in stderr
    assert "--require-provenance: needs a verification policy" in _usage_error(
        *manifest, "--require-provenance=true"
    )


def test_unusable_policies_are_refused(demo: Path, tmp_path: Path) -> None:
    manifest = ("--manifest", str(demo))
    key = str(openssl_keypair(tmp_path).public)
    assert "--provenance-source-uri=(: not a regular expression" in _usage_error(
        *manifest, "--verify-key", key, "--provenance-source-uri", "("
    )
    assert str(tmp_path / "missing.pub") in _usage_error(
        *manifest, "--verify-key", str(tmp_path / "missing.pub")
    )
    assert "cannot be combined with --parse-only" in _usage_error(
        *manifest, "--verify-key", key, "--parse-only"
    )
    done = run_cip("run", *manifest, "--certificate-identity", "x", "--output=json")
    assert done.returncode == 2
    message = json.loads(done.stdout)["errors"][0]["message"]
    assert "give one of --certificate-oidc-issuer and --certificate-oidc-issuer-regexp" in message


def test_a_policy_on_a_run_whose_source_has_nothing_attached_promotes_as_before(
    demo: Path, tmp_path: Path
) -> None:
    key = str(openssl_keypair(tmp_path).public)
    done = run_cip("run", "--manifest", str(demo), "--verify-key", key, "--confirm")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        "phase validate: signatures of 2 source digests checked (0 valid, 0 invalid, 2 missing)"
        in done.stderr
    )
    held = run_cip("run", "--manifest", str(demo), "--verify-key", key, "--require-signature")
    assert held.returncode == 0, held.stdout  # everything is present now: nothing is judged


def test_check_takes_the_same_policy_flags_and_refuses_a_trust_config_without_an_identity(
    demo: Path, tmp_path: Path
) -> None:
    check = ("--manifest", str(demo), "--diff-base", "HEAD")
    assert "needs --certificate-identity" in _usage_error(
        *check, "--sigstore-trust-config", str(tmp_path / "t.json"), command="check"
    )
    assert "--require-signature: needs a verification policy" in _usage_error(
        *check, "--require-signature", command="check"
    )
