"""kpromo's invocation: `cip` without a command, Go booleans, --threads, --log-level, and the
kpromo flags that are refused until their capability arrives."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.cli import run_cip

REPO = Path(__file__).resolve().parents[2]
PLAIN = str(REPO / "examples" / "plain.yaml")


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """The bundled OCI-layout demo in a temp folder: a real promotion, no registry needed."""
    shutil.copytree(REPO / "examples" / "demo", tmp_path / "demo")
    return tmp_path / "demo" / "promoter-manifest.yaml"


def test_without_a_command_cip_is_cip_run() -> None:
    as_kpromo = run_cip("--manifest", PLAIN, "--parse-only")
    as_run = run_cip("run", "--manifest", PLAIN, "--parse-only")
    assert as_kpromo.returncode == 0, as_kpromo.stderr
    assert as_kpromo.stdout == as_run.stdout
    assert "Promotion edges:" in as_kpromo.stdout


def test_kpromo_job_line_promotes_with_go_booleans(demo: Path) -> None:
    planned = run_cip(f"--manifest={demo}", "--confirm=false")
    assert planned.returncode == 0, planned.stderr
    assert "(dry run: nothing written)" in planned.stdout
    assert not (demo.parent / "production").exists()
    promoted = run_cip(f"--manifest={demo}", "--confirm=true", "--sign=false", "--threads=4")
    assert promoted.returncode == 0, promoted.stderr
    assert "copy 3" in promoted.stdout and "(promoted)" in promoted.stdout
    assert (demo.parent / "production" / "hello" / "index.json").is_file()


@pytest.mark.parametrize(
    ("args", "parse_only"),
    [
        (["--parse-only=true"], True),
        (["--parse-only=1"], True),
        (["--parse-only=T"], True),
        (["--parse-only=false"], False),
        (["--parse-only", "--parse-only=0"], False),  # the last one wins, as in pflag
        (["--parse-only=f", "--parse-only"], True),
    ],
)
def test_booleans_take_go_values(demo: Path, args: list[str], parse_only: bool) -> None:
    done = run_cip("--manifest", str(demo), *args)
    assert done.returncode == 0, done.stderr
    assert ("Promotion edges:" in done.stdout) is parse_only
    assert ("(dry run: nothing written)" in done.stdout) is not parse_only


def test_a_boolean_value_go_refuses_is_a_usage_error(demo: Path) -> None:
    done = run_cip("--manifest", str(demo), "--confirm=yes")
    assert done.returncode == 2
    assert "'--confirm'" in done.stderr and "'yes' is not a boolean" in done.stderr
    assert done.stdout == ""
    assert not (demo.parent / "production").exists()


def test_a_value_that_looks_like_a_boolean_flag_stays_a_value(demo: Path) -> None:
    # --snapshot-tag takes a value: "--confirm=maybe" after it is a tag to look for (none
    # carries it), not a boolean flag with a value Go would refuse.
    staging = "oci:" + str(demo.parent / "staging")
    done = run_cip("--snapshot", staging, "--snapshot-tag", "--confirm=maybe")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert not (demo.parent / "production").exists()


# Every flag of kpromo's `cip` (promo-tools cmd/kpromo/cmd/cip/cip.go).
KPROMO_CIP_FLAGS = (
    "certificate-identity", "certificate-identity-regexp", "certificate-oidc-issuer",
    "certificate-oidc-issuer-regexp", "confirm", "manifest", "manifest-based-snapshot-of",
    "manifest-diff-since", "max-image-size", "max-signature-ops", "minimal-snapshot", "output",
    "parse-only", "sign", "signer-account", "snapshot", "snapshot-tag", "thin-manifest-dir",
    "use-prow-manifest-diff", "vuln-severity-threshold",
)  # fmt: skip


def test_every_kpromo_cip_flag_is_a_flag_of_cip_run() -> None:
    shown = run_cip("run", "--help")
    assert shown.returncode == 0, shown.stderr
    named = set(re.findall(r"--[a-z][a-z0-9-]*", shown.stdout))
    assert {f"--{flag}" for flag in KPROMO_CIP_FLAGS} <= named


def test_sign_true_without_a_signer_is_refused_and_sign_false_is_accepted(demo: Path) -> None:
    refused = run_cip("run", "--manifest", str(demo), "--sign=true")
    assert refused.returncode == 2
    assert "--sign needs a signer" in refused.stderr
    accepted = run_cip("run", "--manifest", str(demo), "--sign=false")
    assert accepted.returncode == 0, accepted.stderr


def test_threads_is_concurrency(demo: Path) -> None:
    done = run_cip("run", "--manifest", str(demo), "--threads", "0")
    assert done.returncode == 2
    assert "0 is not in the range" in done.stderr
    help_text = run_cip("run", "--help").stdout
    assert "--concurrency, --threads" in help_text


def test_log_level_filters_operator_logs_not_the_report(demo: Path) -> None:
    default = run_cip("run", "--manifest", str(demo))
    assert default.returncode == 0, default.stderr
    assert "phase plan:" in default.stderr
    assert "debug:" not in default.stderr
    quiet = run_cip("--log-level=error", "--manifest", str(demo))
    assert quiet.returncode == 0, quiet.stderr
    assert "phase" not in quiet.stderr
    assert quiet.stdout == default.stdout  # the report does not depend on the level
    for args in (["--log-level=debug", "run"], ["run", "--log-level", "debug"]):
        verbose = run_cip(*args, "--manifest", str(demo))
        assert verbose.returncode == 0, verbose.stderr
        assert "debug: selected 2 of 2 image digests" in verbose.stderr
        assert "phase plan:" in verbose.stderr
        assert verbose.stdout == default.stdout


def test_unknown_log_level_is_a_usage_error() -> None:
    done = run_cip("--log-level=verbose", "--manifest", PLAIN, "--parse-only")
    assert done.returncode == 2
    assert "'verbose' is not one of" in done.stderr
    assert "trace" in done.stderr and "panic" in done.stderr
