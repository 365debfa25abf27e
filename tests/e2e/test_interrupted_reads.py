"""Ctrl-C and SIGTERM stop the commands that only read as they stop `cip run`: one line saying
how far they got in their own units, exit 130/143, one JSON document with the counts.

Both registries sit behind proxies that answer slowly, so the reads are in flight when the
signal arrives; it is sent once a proxy has seen the command's first request.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.cli import check_json_output
from tests.e2e.conftest import push_images
from tests.e2e.test_dry_run import manifest
from tests.e2e.test_interrupts import NOISE, SlowProxy
from tests.lab.images import oci_image
from tests.lab.registry_lab import LabRegistry
from tests.trust.keyfiles import openssl_keypair

LINE = re.compile(r"interrupted: (\d+) (\w+) (\w+), (\d+) not started; rerun to continue")


def interrupt(
    args: list[str], proxies: list[SlowProxy], signum: signal.Signals, cwd: Path
) -> tuple[int, str, str]:
    """Run cip; once a proxy saw a request, wait a little and send `signum`."""
    for proxy in proxies:
        proxy.arrived.clear()
    process = subprocess.Popen(
        [sys.executable, "-m", "cip.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
    )
    deadline = time.monotonic() + 60
    while not any(proxy.arrived.is_set() for proxy in proxies):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no request reached the registries"
        time.sleep(0.02)
    time.sleep(0.3)
    assert process.poll() is None, "the command finished before it could be interrupted"
    os.kill(process.pid, signum)
    stdout, stderr = process.communicate(timeout=60)
    return process.returncode, stdout, stderr


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def test_reading_commands_stop_cleanly_and_say_how_far_they_got(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging, mirror = registry_factory(), registry_factory()
    catalog = {f"img{i}": oci_image(820 + i) for i in range(8)}
    items = [(name, image, "1.0") for name, image in catalog.items()]
    push_images(staging, items)
    push_images(mirror, items)
    entries = [
        f'- name: {name}\n  dmap:\n    "{image.digest}": ["1.0"]\n'
        for name, image in catalog.items()
    ]
    keys = openssl_keypair(tmp_path / "keys")
    repo = tmp_path / "repo"
    repo.mkdir()
    with (
        SlowProxy(staging.host, delay=0.5).running() as slow_staging,
        SlowProxy(mirror.host, delay=0.5).running() as slow_mirror,
    ):
        proxies = [slow_staging, slow_mirror]
        path = manifest(repo / "m.yaml", slow_staging.host, [slow_mirror.host], entries[0])
        git(repo, "init", "-q")
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "base")
        base = git(repo, "rev-parse", "HEAD")
        manifest(path, slow_staging.host, [slow_mirror.host], "".join(entries))  # adds seven

        reads = ["--manifest", str(path), "--concurrency=1", "--output=json"]
        commands = [
            ("verify", [], "repositories", "read", len(catalog), signal.SIGINT),
            ("sigcheck", ["--verify-key", str(keys.public)], "digests", "checked", len(catalog),
             signal.SIGINT),
            ("check", ["--diff-base", base], "checks", "done", None, signal.SIGINT),
            ("audit reconcile", [], "registries", "judged", 1, signal.SIGTERM),
        ]  # fmt: skip
        for command, extra, unit, verb, total, signum in commands:
            args = [*command.split(), *reads, *extra]
            code, stdout, stderr = interrupt(args, proxies, signum, repo)
            assert code == {signal.SIGINT: 130, signal.SIGTERM: 143}[signum], stderr
            assert not any(word in stderr for word in NOISE), stderr
            lines = stderr.splitlines()
            assert len(lines) <= 3, stderr
            found = LINE.fullmatch(lines[-1])
            assert found is not None, stderr
            done, not_started = int(found[1]), int(found[4])
            assert (found[2], found[3]) == (unit, verb), stderr
            if total is not None:
                assert done + not_started <= total, stderr
            document = check_json_output(stdout)
            assert (document["command"], document["interrupted"]) == (command, True)
            assert document["interruption"] == {
                "signal": signum.name,
                "unit": unit,
                "done": done,
                "not_started": not_started,
            }


def test_replicate_signatures_stops_cleanly_and_replicates_concurrency_images_at_once(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    primary, mirror = registry_factory(), registry_factory()
    catalog = {f"img{i}": oci_image(840 + i) for i in range(8)}
    items = [(name, image, "1.0") for name, image in catalog.items()]
    push_images(primary, items)
    push_images(mirror, items)
    entries = "".join(
        f'- name: {name}\n  dmap:\n    "{image.digest}": ["1.0"]\n'
        for name, image in catalog.items()
    )
    with (
        SlowProxy(primary.host, delay=0.5).running() as slow_primary,
        SlowProxy(mirror.host, delay=0.5).running() as slow_mirror,
    ):
        path = manifest(
            tmp_path / "m.yaml", "staging.invalid", [slow_primary.host, slow_mirror.host], entries
        )
        args = ["replicate-signatures", "--manifest", str(path), "--concurrency=1"]
        code, stdout, stderr = interrupt(
            [*args, "--output=json"], [slow_primary, slow_mirror], signal.SIGINT, tmp_path
        )
    assert code == 130, stderr
    assert not any(word in stderr for word in NOISE), stderr
    found = LINE.fullmatch(stderr.splitlines()[-1])
    assert found is not None, stderr
    assert (found[2], found[3]) == ("images", "replicated"), stderr
    done, not_started = int(found[1]), int(found[4])
    # --concurrency=1: one image in flight when the signal came, the others done or waiting.
    assert len(catalog) - 1 <= done + not_started <= len(catalog), stderr
    assert not_started > 0, stderr
    document = check_json_output(stdout)
    assert (document["command"], document["interrupted"]) == ("replicate-signatures", True)
    assert document["interruption"] == {
        "signal": "SIGINT",
        "unit": "images",
        "done": done,
        "not_started": not_started,
    }
