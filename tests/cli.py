"""Running the `cip` command as a user would: a subprocess, its output and exit code.

When the command line asks for `--output=json`, stdout must be exactly one JSON document that
validates against the published schema, whatever the outcome: every test that runs cip that
way checks the schema without saying so.
"""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "schema" / "cip-output.schema.json"


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
    *args: str, cwd: Path | None = REPO, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "cip.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
        timeout=timeout,
    )
    if asks_for_json(args) and "--help" not in args:
        document = check_json_output(done.stdout)
        assert document["exit_code"] == done.returncode, (document["exit_code"], done.stderr)
    return done
