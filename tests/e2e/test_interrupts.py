"""Ctrl-C and SIGTERM in the middle of a run: one line, exit 130/143, one JSON document, and
a rerun that converges.

The mirror sits behind a proxy that answers slowly, so planning and promotion are really in
flight when the signal arrives; the phase lines cip logs on stderr say which phase it is in.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.cli import check_json_output
from tests.e2e.conftest import push_images, run_cip
from tests.e2e.test_dry_run import manifest
from tests.lab.fault_proxy import FaultProxy, ProxyRequest, slow
from tests.lab.images import oci_image
from tests.lab.registry_lab import LabRegistry

LINE = re.compile(r"interrupted: (\d+) edges done, (\d+) not started; rerun to continue")
NOISE = ("Traceback", "never awaited", "has been closed", "Task was destroyed", "Exception")


class SlowProxy:
    """A FaultProxy on its own thread and event loop (the cip under test is a subprocess),
    delaying every request by `delay` seconds; set `delay` to 0 to let a rerun go fast."""

    def __init__(self, upstream: str, delay: float) -> None:
        self.delay = delay
        self.host = ""
        self.arrived = threading.Event()  # set by each request; clear it to wait for the next
        self._upstream = upstream
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    def _schedule(self, request: ProxyRequest) -> object:
        self.arrived.set()
        return slow(self.delay)

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async with FaultProxy(self._upstream, self._schedule) as proxy:  # type: ignore[arg-type]
            self.host = proxy.host
            self._ready.set()
            await self._stop.wait()

    @contextmanager
    def running(self) -> Iterator[SlowProxy]:
        self._thread.start()
        assert self._ready.wait(10), "the proxy did not start"
        try:
            yield self
        finally:
            assert self._loop is not None and self._stop is not None
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)


def interrupt(
    args: list[str], when: str, signum: signal.Signals, after: float
) -> tuple[int, str, str]:
    """Run cip, send `signum` `after` seconds once stderr shows `when`; (code, stdout, stderr)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "cip.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    seen: list[str] = []
    for line in process.stderr:
        seen.append(line)
        if when in line:
            break
    else:
        raise AssertionError(f"never saw {when!r}: {''.join(seen)}")
    time.sleep(after)
    assert process.poll() is None, "the run finished before it could be interrupted"
    os.kill(process.pid, signum)
    stdout, rest = process.communicate(timeout=60)
    return process.returncode, stdout, "".join(seen) + rest


def counts(stderr: str) -> tuple[int, int]:
    lines = stderr.splitlines()
    assert len(lines) <= 6, stderr  # the phase lines so far, then the one interrupt line
    assert not any(word in stderr for word in NOISE), stderr
    found = LINE.fullmatch(lines[-1])
    assert found is not None, stderr
    return int(found[1]), int(found[2])


def test_interrupts_at_each_phase_stop_cleanly_and_a_rerun_converges(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging, mirror = registry_factory(), registry_factory()
    catalog = {f"img{i}": oci_image(800 + i, layers=2) for i in range(12)}
    push_images(staging, [(name, image, "src") for name, image in catalog.items()])
    images = "".join(
        f'- name: {name}\n  dmap:\n    "{image.digest}": ["1.0", "latest"]\n'
        for name, image in catalog.items()
    )
    edges = len(catalog) * 2
    with SlowProxy(mirror.host, delay=0.25).running() as proxy:
        path = manifest(tmp_path / "m.yaml", staging.host, [proxy.host], images)
        run = ["run", "--manifest", str(path), "--confirm", "--concurrency=2"]

        # Planning: nothing done yet, every edge not started; the JSON says the same.
        code, stdout, stderr = interrupt([*run, "--output=json"], "phase setup", signal.SIGINT, 0.3)
        assert code == 130, stderr
        assert counts(stderr) == (0, edges)
        document = check_json_output(stdout)
        assert (document["ok"], document["interrupted"], document["exit_code"]) == (
            False,
            True,
            130,
        )
        assert document["interruption"] == {
            "signal": "SIGINT",
            "unit": "edges",
            "done": 0,
            "not_started": edges,
        }
        assert document["dry_run"] is False

        # Promotion, by Ctrl-C then by SIGTERM: some edges left, the counts add up.
        code, stdout, stderr = interrupt(
            [*run, "--output=json"], "phase validate", signal.SIGINT, 1.5
        )
        assert code == 130, stderr
        done, not_started = counts(stderr)
        assert done + not_started <= edges and not_started > 0, stderr
        document = check_json_output(stdout)
        assert document["interruption"] == {
            "signal": "SIGINT",
            "unit": "edges",
            "done": done,
            "not_started": not_started,
        }
        code, stdout, stderr = interrupt(run, "phase validate", signal.SIGTERM, 1.0)
        assert code == 143, stderr
        assert stdout == ""
        assert counts(stderr)[0] >= done  # what was done is found in place and counted

        # The rerun finishes what was left; the one after it finds everything in place.
        proxy.delay = 0
        rerun = run_cip(*run, "--output=json")
        assert rerun.returncode == 0, rerun.stderr
        again = run_cip(*run, "--output=json")
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["edges"]["present"] == edges
