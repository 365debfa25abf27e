"""The sharding examples (Kubernetes Indexed Job + verify Job, GitHub Actions matrix, Prow
periodic) cannot run here; these tests check them structurally: they parse, every cip flag they
use exists, and the shard flags agree with the engine's own count of parallel workers."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import click
import yaml

from cip.cli.run import run_command
from cip.cli.verify import verify_command

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "shards"
CONTROL = {"&&", "&", ";", "||", "|"}
COMMANDS: dict[str, click.Command] = {"run": run_command, "verify": verify_command}


def cip_commands(script: str) -> list[list[str]]:
    """Every `cip …` command of a shell script, redirections dropped."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    found: list[list[str]] = []
    current: list[str] = []
    tokens = list(lexer)
    skip = False
    for token in [*tokens, ";"]:
        if skip:
            skip = False
        elif token in (">", ">>", "<"):
            skip = True
        elif token in CONTROL:
            if current[:1] == ["cip"]:
                found.append(current)
            current = []
        else:
            current.append(token)
    return found


def flags(command: list[str]) -> dict[str, str | None]:
    """--flag[=value] of a cip command (values given as a separate word are not used here)."""
    out: dict[str, str | None] = {}
    for word in command[2:]:
        if word.startswith("--"):
            name, _, value = word.partition("=")
            out[name] = value or None
    return out


def check_flags_exist(command: list[str]) -> None:
    assert command[1] in COMMANDS, command
    known = {opt for p in COMMANDS[command[1]].params for opt in p.opts}
    unknown = set(flags(command)) - known
    assert not unknown, f"{' '.join(command)}: no such flags {unknown}"


def load(name: str) -> list[Any]:
    return list(yaml.safe_load_all((EXAMPLES / name).read_text()))


def test_indexed_job_shards_match_its_completions_and_verify_follows() -> None:
    [job] = load("k8s-promote-indexed-job.yaml")
    spec = job["spec"]
    assert (job["kind"], spec["completionMode"]) == ("Job", "Indexed")
    assert spec["backoffLimitPerIndex"] >= 1
    [container] = spec["template"]["spec"]["containers"]
    [promote] = cip_commands(container["command"][-1])
    check_flags_exist(promote)
    given = flags(promote)
    assert int(given["--shard-count"] or 0) == spec["completions"] == spec["parallelism"]
    assert "--shard-index" not in given  # Kubernetes' JOB_COMPLETION_INDEX gives it
    assert "--confirm" in given and given["--output"] == "json"
    assert "$JOB_COMPLETION_INDEX" in container["command"][-1]

    [verify_job] = load("k8s-verify-job.yaml")
    [checker] = verify_job["spec"]["template"]["spec"]["containers"]
    merge, verify = cip_commands(checker["command"][-1])
    for command in (merge, verify):
        check_flags_exist(command)
    assert "--merge" in flags(merge) and merge[-1] == "/results/shard-*.json"
    assert flags(verify)["--thin-manifest-dir"] == given["--thin-manifest-dir"]
    claims = [
        v["persistentVolumeClaim"]["claimName"]
        for j in (job, verify_job)
        for v in j["spec"]["template"]["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    ]
    assert len(claims) == 2 and claims[0] == claims[1]  # the shards' documents are shared


def test_github_matrix_covers_every_shard_once_then_verifies() -> None:
    [workflow] = load("github-actions.yaml")
    promote = workflow["jobs"]["promote"]
    shards = promote["strategy"]["matrix"]["shard"]
    assert promote["strategy"]["fail-fast"] is False
    [step] = [s for s in promote["steps"] if "cip run" in s.get("run", "")]
    counts = set()
    for shard in shards:
        script = step["run"].replace("${{ matrix.shard }}", str(shard))
        [command] = cip_commands(script)
        check_flags_exist(command)
        given = flags(command)
        assert given["--shard-index"] == str(shard)
        counts.add(int(given["--shard-count"] or 0))
    [count] = counts
    assert shards == list(range(count))
    verify = workflow["jobs"]["verify"]
    assert verify["needs"] == "promote"
    commands = [c for s in verify["steps"] if "run" in s for c in cip_commands(s["run"])]
    for command in commands:
        if command[0] == "cip":
            check_flags_exist(command)
    assert ["cip", "verify", "--merge", "shard-*.json"] in commands


def test_prow_periodic_runs_every_shard_once_then_verifies() -> None:
    [config] = load("prow-periodic.yaml")
    [job] = config["periodics"]
    [container] = job["spec"]["containers"]
    commands = cip_commands(container["args"][-1])
    runs = [c for c in commands if c[1] == "run"]
    for command in commands:
        check_flags_exist(command)
    indexes = sorted(int(flags(c)["--shard-index"] or -1) for c in runs)
    [count] = {int(flags(c)["--shard-count"] or 0) for c in runs}
    assert indexes == list(range(count))
    assert [c[1] for c in commands[len(runs) :]] == ["verify", "verify"]
    assert "--merge" in flags(commands[len(runs)])


def test_the_script_reader_finds_commands_and_drops_redirections() -> None:
    script = "cip run --a=1 > out.json & cip verify --merge x*.json && echo done; cip verify"
    assert cip_commands(script) == [
        ["cip", "run", "--a=1"], ["cip", "verify", "--merge", "x*.json"], ["cip", "verify"]
    ]  # fmt: skip
