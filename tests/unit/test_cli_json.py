"""`--output=json`: exactly one JSON document on stdout in every outcome, valid against the
schema in schema/ (run_cip validates every JSON output; these tests cover each outcome)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cip.report.document import SCHEMA_VERSION, interrupted_json
from tests.cli import SCHEMA, check_json_output, run_cip
from tests.unit.conftest import D1, write

REPO = Path(__file__).resolve().parents[2]
ACTIONS = [
    "copy", "add-tag", "present", "lost", "tag-move", "failed", "too-large", "vulnerable",
    "signature-invalid", "signature-missing", "provenance-invalid", "provenance-missing",
]  # fmt: skip


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "examples" / "demo", tmp_path / "demo")
    return tmp_path / "demo" / "promoter-manifest.yaml"


def test_schema_file_names_the_version_the_documents_carry() -> None:
    schema = json.loads(SCHEMA.read_text())
    assert schema["properties"]["schema_version"]["const"] == SCHEMA_VERSION


def test_dry_run_then_promotion_then_rerun(demo: Path) -> None:
    planned = run_cip("run", "--manifest", str(demo), "--output=json")
    assert planned.returncode == 0, planned.stderr
    document = json.loads(planned.stdout)
    assert (document["ok"], document["dry_run"], document["promotion"]) == (True, True, None)
    assert document["edges"]["copy"] == 3
    assert document["summary"]["manifests"] == 1
    assert [i["image"] for i in document["images"]] == ["hello", "web"]
    assert all(list(i["destinations"]) == ACTIONS for i in document["images"])
    assert "phase plan:" in planned.stderr  # operator logs stay on stderr

    promoted = json.loads(run_cip("--manifest", str(demo), "--confirm", "--output=json").stdout)
    assert (promoted["ok"], promoted["dry_run"], promoted["promotion"]) == (True, False, "promoted")
    again = json.loads(run_cip("--manifest", str(demo), "--confirm", "--output=json").stdout)
    assert again["promotion"] == "nothing promoted"
    assert again["edges"]["present"] == 3


def test_problems_are_ok_false_exit_1(demo: Path) -> None:
    text = demo.read_text() + f'- name: gone\n  dmap:\n    "{D1}": ["1"]\n'
    demo.write_text(text)
    done = run_cip("run", "--manifest", str(demo), "--confirm", "--output", "json")
    assert done.returncode == 1, done.stderr
    document = json.loads(done.stdout)
    assert document["ok"] is False and document["exit_code"] == 1
    assert document["promotion"] == "partially promoted"
    [gone] = [i for i in document["images"] if i["image"] == "gone"]
    assert gone["destinations"]["lost"][0]["tags"] == ["1"]
    assert document["errors"] == []


def test_invalid_manifest_gives_diagnostics_with_file_line_column(tmp_path: Path) -> None:
    manifest = write(
        tmp_path / "m.yaml",
        "registries:\n- name: gcr.io/s\n  src: true\n- name: gcr.io/p\n"
        'images:\n- name: a\n  dmap:\n    "sha256:12": ["1"]\n',
    )
    done = run_cip("run", "--manifest", str(manifest), "--output=json")
    assert done.returncode == 2
    document = json.loads(done.stdout)
    assert document["ok"] is False and document["summary"] is None
    [error] = document["errors"]
    assert (error["file"], error["line"], error["column"]) == (str(manifest), 8, 5)
    assert error["message"] == "invalid digest: sha256:12"
    assert "invalid digest" in done.stderr  # people still read stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # found by cip while running the command
        (["--parse-only", "--confirm"], "--confirm cannot be combined"),
        (["--manifest-based-snapshot-of", "gcr.io/p"], "--output=json is not available"),
        (["--diff-base", "no-such-ref"], "not a git repository"),
        # found by click once --output was read (it is read first, wherever it stands)
        (["--concurrency", "many"], "'many' is not a valid integer"),
        (["--confirm=maybe"], "'maybe' is not a boolean"),
        (["--sign"], "--sign needs a signer"),
        # found before any flag was read: the command line itself says JSON
        (["--no-such-flag"], "--no-such-flag"),
    ],
)
def test_usage_errors_answer_in_json_once_json_is_asked_for(
    args: list[str], message: str, tmp_path: Path
) -> None:
    manifest = write(
        tmp_path / "m.yaml",
        "registries:\n- name: oci:s\n  src: true\n- name: oci:p\n"
        f'images:\n- name: a\n  dmap:\n    "{D1}": ["1"]\n',
    )
    for order in ([*args, "--output=json"], ["--output", "json", *args]):
        done = run_cip("run", "--manifest", str(manifest), *order)
        assert done.returncode == 2, (order, done.stderr)
        document = json.loads(done.stdout)
        [error] = document["errors"]
        assert message in error["message"], (order, error)
        assert message in done.stderr
        assert document["images"] == [] and document["warnings"] == []


def test_usage_errors_in_text_mode_leave_stdout_empty() -> None:
    done = run_cip("run", "--manifest", "examples/plain.yaml", "--no-such-flag")
    assert done.returncode == 2
    assert done.stdout == ""


def test_missing_manifest_file_in_json() -> None:
    done = run_cip("--manifest", "nope.yaml", "--parse-only", "--output=json")
    assert done.returncode == 2
    [error] = json.loads(done.stdout)["errors"]
    assert (error["file"], error["message"]) == ("nope.yaml", "file not found")


@pytest.mark.parametrize(
    ("signal", "code", "unit", "counts"),
    [
        ("SIGINT", 130, "edges", (3, 7)),
        ("SIGINT", 130, "repositories", (0, 12)),
        ("SIGTERM", 143, None, (None, None)),
    ],
)
def test_interrupted_document_matches_the_schema(
    signal: str, code: int, unit: str | None, counts: tuple[int | None, int | None]
) -> None:
    rendered = interrupted_json(
        signal,  # type: ignore[arg-type]
        unit=unit,
        done=counts[0],
        not_started=counts[1],
        dry_run=False,
        requests={"127.0.0.1:5000": {"GET 200": 4}},
    )
    document = check_json_output(rendered)
    assert (document["ok"], document["interrupted"], document["exit_code"]) == (False, True, code)
    assert document["interruption"] == {
        "signal": signal,
        "unit": unit,
        "done": counts[0],
        "not_started": counts[1],
    }
    assert document["images"] == [] and document["errors"] == []
