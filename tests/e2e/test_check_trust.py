"""`cip check`'s signature and provenance checks: staging verified as `cip run` verifies it, a
finding at the manifest line of each digest a promotion would hold back."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.check_repo import PullRequest, entry, open_pull_request
from tests.e2e.staging_fixtures import (
    attached,
    attached_tag,
    attestation_layer,
    envelope,
    signature_layer,
    simple_signing,
    slsa_statement,
)
from tests.e2e.test_check import statuses
from tests.e2e.test_staging_verification import attach
from tests.lab.registry_lab import LabRegistry
from tests.trust.keyfiles import KeyPair, openssl_keypair


@pytest.fixture
def pr(
    registry_factory: Callable[..., LabRegistry],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> PullRequest:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    pull = open_pull_request(registry_factory, tmp_path / "repo")
    pull.write_images(pull.base_images() + entry("app", (pull.new, ["2.0"])))
    return pull


def sign_in_staging(pr: PullRequest, key: KeyPair, scratch: Path, *, provenance: bool) -> None:
    digest = pr.new.digest
    layer = signature_layer(key.private, simple_signing("staging/app", digest), scratch)
    items = [(attached_tag(digest, "sig"), attached([layer]))]
    if provenance:
        signed = envelope(slsa_statement(digest), key.private, scratch / "att")
        items.append((attached_tag(digest, "att"),
                      attached([attestation_layer(signed, "https://slsa.dev/provenance/v1")])))  # fmt: skip
    attach(pr.staging, "staging/app", items)


def findings_of(document: dict[str, object], check: str) -> list[dict[str, object]]:
    found = document["findings"]
    assert isinstance(found, list)
    return [f for f in found if f["check"] == check]


def test_without_a_policy_both_checks_are_skipped_never_passed(pr: PullRequest) -> None:
    done = pr.check("--output=json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert statuses(document)["signature"] == statuses(document)["provenance"] == "skipped"
    notes = {c["id"]: c["note"] for c in document["checks"]}  # type: ignore[attr-defined]
    assert notes["signature"] == "not asked for: no --verify-key or --certificate-identity policy"


def test_a_signature_by_another_key_and_missing_provenance_fail_at_the_line(
    pr: PullRequest, tmp_path: Path
) -> None:
    keys, other = openssl_keypair(tmp_path / "keys"), openssl_keypair(tmp_path / "other", "o")
    sign_in_staging(pr, other, tmp_path / "s", provenance=False)
    done = pr.check("--verify-key", str(keys.public), "--require-provenance", "--output=json")
    assert done.returncode == 1, done.stdout + done.stderr
    document = json.loads(done.stdout)
    assert statuses(document)["signature"] == statuses(document)["provenance"] == "fail"
    (signature,) = findings_of(document, "signature")
    assert signature["line"] == pr.line_of(pr.new.digest)
    assert "no signature verifies" in str(signature["message"])
    assert "does not verify with the key" in str(signature["message"])
    (provenance,) = findings_of(document, "provenance")
    assert "no provenance in staging" in str(provenance["message"])
    text = pr.check("--verify-key", str(keys.public))
    assert "  fail     signature" in text.stdout and "  pass     provenance" in text.stdout


def test_what_cip_run_would_promote_passes(pr: PullRequest, tmp_path: Path) -> None:
    keys = openssl_keypair(tmp_path / "keys")
    sign_in_staging(pr, keys, tmp_path / "s", provenance=True)
    done = pr.check("--verify-key", str(keys.public), "--require-signature",
                    "--require-provenance", "--provenance-builder-id", "builder.test",
                    "--output=json")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads(done.stdout)
    assert statuses(document)["signature"] == statuses(document)["provenance"] == "pass"
