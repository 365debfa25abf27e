"""Running the `cip` command as a user would: a subprocess, its output and exit code.

When the command line asks for `--output=json`, stdout must be exactly one JSON document that
validates against the published schema, whatever the outcome: every test that runs cip that
way checks the schema without saying so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "schema" / "cip-output.schema.json"
# The capabilities that let root read any file whatever its mode (capabilities(7)).
FILE_OVERRIDES = "-dac_override,-dac_read_search"


@cache
def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def check_json_output(stdout: str) -> dict[str, Any]:
    """The one JSON document on stdout, validated against the schema (AssertionError if not)."""
    try:
        document = json.loads(stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"stdout is not one JSON document ({exc}):\n{stdout}") from exc
    errors = sorted(_validator().iter_errors(document), key=lambda e: list(e.path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.path)) or '(top)'}: {e.message}" for e in errors
    )
    assert isinstance(document, dict)
    return document


def asks_for_json(args: tuple[str, ...]) -> bool:
    """Whether cip was asked for JSON: the last --output on the command line says so."""
    wanted = None
    for index, arg in enumerate(args):
        if arg.startswith("--output="):
            wanted = arg.removeprefix("--output=")
        elif arg == "--output" and index + 1 < len(args):
            wanted = args[index + 1]
    return wanted == "json"


def run_cip(
    *args: str,
    cwd: Path | None = REPO,
    timeout: float = 300,
    prefix: tuple[str, ...] = (),
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`cip ARGS`; `env`, when given, is the whole environment (nothing inherited)."""
    done = subprocess.run(
        [*prefix, sys.executable, "-m", "cip.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
        timeout=timeout,
        env=dict(env) if env is not None else None,
    )
    if asks_for_json(args) and "--help" not in args:
        document = check_json_output(done.stdout)
        assert document["exit_code"] == done.returncode, (document["exit_code"], done.stderr)
    return done


def run_cip_bound_by_file_modes(
    *args: str, cwd: Path | None = REPO
) -> subprocess.CompletedProcess[str]:
    """`cip` for whom a folder of mode 000 is unreadable, as it is for every ordinary user.

    Tests often run as root, which reads anything; dropping root's file-permission overrides
    with setpriv (util-linux) keeps the same user (and so the same Python) but makes modes count.
    """
    if os.geteuid() != 0:
        return run_cip(*args, cwd=cwd)
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise RuntimeError("setpriv (util-linux) is needed to test unreadable files as root")
    drop = (setpriv, f"--bounding-set={FILE_OVERRIDES}", f"--inh-caps={FILE_OVERRIDES}")
    return run_cip(*args, cwd=cwd, prefix=drop)
