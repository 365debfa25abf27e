"""Commands that neither sign, verify nor gate do not load the machinery for it: the signing,
verification and vulnerability-gate flags import their stacks only when a run uses them, so
`--version`, `--help` and `--parse-only` start as fast as they can (bench/startup.py measures
how fast; this says what is loaded)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.cli import run_cip
from tests.trust.keyfiles import openssl_keypair
from tests.unit.test_cli_keyless import demo

__all__ = ["demo"]

# Packages and cip modules that only signing, verification, the gate or the network need.
HEAVY_PACKAGES = ("sigstore", "cryptography", "nacl", "aiohttp", "rfc8785")
HEAVY_MODULES = (
    "cip.trust.judge",
    "cip.trust.keys",
    "cip.trust.signer",
    "cip.trust.keyless",
    "cip.trust.bundle_verify",
    "cip.trust.keyless_verify",
    "cip.promote.signing",
    "cip.promote.validate",
    "cip.vuln.gate",
)


def loaded_modules(*args: str) -> set[str]:
    """The modules `cip ARGS` imports, from Python's own import-time log on stderr."""
    done = run_cip(*args, env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    found = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "self [us]" not in line:
            found.add(line.rpartition("|")[2].strip())
    assert "cip.cli.main" in found  # the log was read
    return found


@pytest.mark.parametrize(
    "args",
    [("--version",), ("run", "--help"), ("run", "--parse-only")],
    ids=["version", "run-help", "parse-only"],
)
def test_commands_that_neither_sign_verify_nor_gate_load_none_of_it(
    demo: Path, args: tuple[str, ...]
) -> None:
    if "--parse-only" in args:
        args = (*args, "--manifest", str(demo))
    loaded = loaded_modules(*args)
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY_PACKAGES or m in HEAVY_MODULES)
    assert heavy == []


def test_a_key_policy_verifies_staging_without_loading_sigstore(demo: Path, tmp_path: Path) -> None:
    key = openssl_keypair(tmp_path).public
    loaded = loaded_modules("run", "--manifest", str(demo), "--verify-key", str(key))
    assert "cip.trust.judge" in loaded  # staging was verified
    assert sorted(m for m in loaded if m.split(".")[0] == "sigstore") == []
