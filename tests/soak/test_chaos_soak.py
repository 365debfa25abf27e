"""The chaos soak: a signed promotion of hundreds of images into three mirrors, through faults.

A staging registry and three mirrors (real registries), each behind a fault proxy that scatters
connection resets and 5xx answers and brings storms of 503s and of 429s with `Retry-After`.
`cip run --confirm --signing-key` is SIGKILLed at random points (a random number of writes into
the run, of signature writes, or a random moment, planning included) and rerun; during some runs a mirror is stopped
by its PID and started again on the same port with the same storage. After every step no
destination tag may point at incomplete content (each tag's manifest, children, config and
layers read back directly from the registries) and no tag may be other than the manifests say.
At the end a rerun converges, a calm rerun writes nothing, `cip verify` with the soak's public key
finds every edge in place and every signature valid, each `.sig` holding exactly one signature.

The short soak runs by default (a few kills, within CI's time); `CIP_SOAK_LONG=1` runs the long
one (at least 20 kills) and writes its numbers to `CIP_SOAK_RESULTS` (default
`soak-results.json`). `CIP_SOAK_SEED=N` replays a run: the seed is printed on failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from tests.cli import run_cip
from tests.e2e.test_dry_run import manifest
from tests.lab.fault_proxy import FaultProxy, threaded_fault_proxy
from tests.lab.images import Image
from tests.lab.registry_lab import LabRegistry
from tests.soak.chaos import (
    TAGS,
    WRITES,
    Chaos,
    Mirror,
    all_digests,
    build_catalog,
    content_bytes,
    missing_signatures,
    push_all,
    read_holdings,
    wrong_tags,
)
from tests.trust.keyfiles import openssl_keypair


@dataclass(frozen=True)
class Size:
    name: str
    images: int
    kills: int
    restarts: int  # runs during which a mirror is restarted (then killed by writes)
    kill_writes: tuple[int, int]  # a kill by writes comes this many writes into a run
    early_kills: float  # the share of kills at a random moment (planning included)
    storm_gap: float  # mean seconds between two storms at one proxy


SHORT = Size("short", 200, kills=3, restarts=1, kill_writes=(200, 1500), early_kills=0.25,
             storm_gap=20.0)  # fmt: skip
LONG = Size("long", 300, kills=24, restarts=4, kill_writes=(50, 500), early_kills=0.2,
            storm_gap=10.0)  # fmt: skip
# How a run is killed: after a random moment (planning included), a random number of writes
# (a restart of a mirror on the way for "restart"), or a random number of `.sig` writes.
Kill = Literal["moment", "writes", "restart", "signing"]
# Patience for hosts that go down: a restart or a storm lasts seconds, never the 5 min default.
PATIENCE = ("--retry-timeout", "20s", "--retry-max-backoff", "1s")


@dataclass
class Tally:
    """What the soak did, for the summary line and the results file."""

    seed: int
    size: str
    images: int = 0
    edges: int = 0
    runs: int = 0
    kills: int = 0
    kill_kinds: dict[str, int] = field(default_factory=dict)
    restarts: int = 0
    exits: dict[str, int] = field(default_factory=dict)
    checks: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    bytes_uploaded: int = 0
    content_bytes: int = 0
    wall_seconds: float = 0.0
    seconds: dict[str, float] = field(default_factory=dict)  # per stage

    def line(self) -> str:
        return (
            f"soak {self.size} seed={self.seed}: {self.images} images, {self.edges} edges, "
            f"{self.runs} runs, {self.kills} SIGKILLs {self.kill_kinds}, "
            f"{self.restarts} mirror restarts, exits {self.exits}, {self.checks} checks, "
            f"faults {self.faults}, {self.requests} requests through the proxies, "
            f"{self.bytes_uploaded} bytes uploaded to the mirrors "
            f"(content {self.content_bytes}), {self.wall_seconds:.1f} s "
            f"({', '.join(f'{k} {v:.1f} s' for k, v in self.seconds.items())})"
        )


def soak_size() -> Size:
    return LONG if os.environ.get("CIP_SOAK_LONG") == "1" else SHORT


def soak_seed() -> int:
    given = os.environ.get("CIP_SOAK_SEED")
    return int(given) if given else random.SystemRandom().randrange(1, 2**31)


@contextmanager
def proxies(hosts: list[str], chaos: list[Chaos]) -> Iterator[list[FaultProxy]]:
    with ExitStack() as stack:
        yield [
            stack.enter_context(threaded_fault_proxy(host, schedule))
            for host, schedule in zip(hosts, chaos, strict=True)
        ]


class Soak:
    """One soak: the registries, proxies, manifest and key, and the loop of runs."""

    def __init__(
        self,
        size: Size,
        seed: int,
        tmp_path: Path,
        staging: LabRegistry,
        mirrors: list[Mirror],
        images: dict[str, Image],
        proxied: list[FaultProxy],
        chaos: list[Chaos],
    ) -> None:
        self.size, self.rng, self.tmp = size, random.Random(seed), tmp_path
        self.staging, self.mirrors, self.images = staging, mirrors, images
        self.source_proxy, self.mirror_proxies = proxied[0], proxied[1:]
        self.chaos = chaos
        self.tally = Tally(seed, size.name, images=len(images))
        self.tally.edges = len(images) * len(TAGS) * len(mirrors)
        self.keys = openssl_keypair(tmp_path / "keys")
        self.path = manifest(
            tmp_path / "promoter.yaml",
            f"{self.source_proxy.host}/stage",
            [f"{p.host}/prod" for p in self.mirror_proxies],
            "".join(
                f'- name: {n}\n  dmap:\n    "{i.digest}": [{", ".join(map(json.dumps, TAGS))}]\n'
                for n, i in images.items()
            ),
        )
        self.argv = [
            sys.executable, "-m", "cip.cli", "run", "--manifest", str(self.path), "--confirm",
            "--signing-key", str(self.keys.private), *PATIENCE,
        ]  # fmt: skip
        self._seen = [0] * len(self.mirror_proxies)  # proxy records already counted
        self.writes = self.signature_writes = 0  # relayed to the mirrors so far
        self.complete: dict[str, set[tuple[str, str]]] = {}  # what checks found complete

    def count_writes(self) -> tuple[int, int]:
        """Writes relayed to the mirrors so far, and how many of them wrote a `.sig` tag."""
        for index, proxy in enumerate(self.mirror_proxies):
            fresh = proxy.records[self._seen[index] :]
            self._seen[index] += len(fresh)
            written = [r.request for r in fresh if r.request.method in WRITES]
            self.writes += len(written)
            self.signature_writes += sum(1 for r in written if r.path.endswith(".sig"))
        return self.writes, self.signature_writes

    def timed(self, stage: str, *args: str) -> subprocess.CompletedProcess[str]:
        """`cip ARGS`, its wall time added to the stage's."""
        begun = time.monotonic()
        done = run_cip(*args, timeout=600)
        self.tally.seconds[stage] = self.tally.seconds.get(stage, 0) + time.monotonic() - begun
        return done

    def check(self, when: str) -> None:
        """No tag on incomplete content, no tag other than the manifests say."""
        self.tally.checks += 1
        begun = time.monotonic()
        for held in read_holdings([m.host for m in self.mirrors], self.complete):
            assert held.incomplete == [], f"{when}: tags on incomplete content in {held.host}"
            assert wrong_tags(held, self.images) == [], when
        self.tally.seconds["checks"] = (
            self.tally.seconds.get("checks", 0) + time.monotonic() - begun
        )

    def kill_plan(self) -> list[Kill]:
        """The kind of each kill, shuffled: at least one in the sign phase and, when the size
        asks for them, some at a random moment; mirrors restart during runs killed by writes."""
        kills, size = self.size.kills, self.size
        signing = max(1, kills // 4)
        moments = round(kills * size.early_kills)
        writes = kills - signing - moments
        assert writes >= size.restarts, "every restart needs a run killed by its writes"
        kinds: list[Kill] = ["signing"] * signing + ["moment"] * moments
        kinds += ["restart"] * size.restarts + ["writes"] * (writes - size.restarts)
        self.rng.shuffle(kinds)
        return kinds

    def chaotic_runs(self) -> None:
        """Run, kill at a random point, check, rerun, until the planned kills are done."""
        plan = self.kill_plan()
        while self.tally.kills < len(plan):
            run = self.tally.runs
            self.tally.runs += 1
            err = self.tmp / f"run-{run:02d}.err"
            with err.open("w") as stderr:
                process = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=stderr)
                killed = self._watch(process, plan[self.tally.kills])
            text = err.read_text()
            assert "Traceback" not in text, f"run {run}: {text[-3000:]}"
            if not killed:
                code = process.returncode
                self.tally.exits[str(code)] = self.tally.exits.get(str(code), 0) + 1
                assert code in (0, 1), f"run {run} exited {code}: {text[-3000:]}"
            self.check(f"after run {run} ({'killed' if killed else process.returncode})")
            if not killed and process.returncode == 0:
                break
        assert self.tally.kills == self.size.kills, (
            f"the promotion finished after {self.tally.kills} of {self.size.kills} kills"
        )
        assert self.tally.restarts == self.size.restarts, "a planned restart found no run"

    def _watch(self, process: subprocess.Popen[bytes], kind: Kill) -> bool:
        """Wait for the run's kill point (and restart a mirror on the way); True if killed."""
        started = time.monotonic()
        writes, signatures = self.count_writes()
        moment = self.rng.uniform(0.2, 3.0)
        restart_at = writes + self.rng.randint(20, 200) if kind == "restart" else None
        kill_at = (restart_at or writes) + self.rng.randint(*self.size.kill_writes)
        signed_at = signatures + self.rng.randint(1, 40)
        mirror = self.rng.choice(self.mirrors)
        down_for = self.rng.uniform(0.3, 2.0)
        while process.poll() is None:
            writes, signatures = self.count_writes()
            if restart_at is not None and writes >= restart_at:
                mirror.restart(down_for, time.sleep)
                self.tally.restarts += 1
                restart_at = None
            due = {
                "moment": time.monotonic() - started >= moment,
                "signing": signatures >= signed_at,
            }.get(kind, writes >= kill_at and restart_at is None)
            if due:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
                self.tally.kills += 1
                self.tally.kill_kinds[kind] = self.tally.kill_kinds.get(kind, 0) + 1
                return True
            time.sleep(0.01)
        return False

    def converge(self) -> None:
        """A rerun under chaos promotes everything; a calm rerun writes nothing."""
        final = self.timed("converging run", *self.argv[3:])
        self.tally.runs += 1
        assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]
        assert "Traceback" not in final.stderr
        self.check("after the converging run")
        for schedule in self.chaos:
            schedule.calm = True
        before = self.count_writes()[0]
        calm = self.timed("calm run", *self.argv[3:])
        self.tally.runs += 1
        assert calm.returncode == 0, calm.stdout[-3000:] + calm.stderr[-3000:]
        assert f"present {self.tally.edges:,}," in calm.stdout, calm.stdout[-2000:]
        assert "phase sign: 0 signatures made, 0 replicated" in calm.stderr, calm.stderr
        assert self.count_writes()[0] == before, "a rerun after convergence wrote"

    def everything_in_place(self) -> None:
        """`cip verify` with a verify policy: every edge in place, every digest (index children
        included) signed on every mirror with the soak's key."""
        verified = self.timed(
            "verify", "verify", "--manifest", str(self.path),
            "--verify-key", str(self.keys.public), "--output=json", *PATIENCE,
        )  # fmt: skip
        assert verified.returncode == 0, verified.stdout[-3000:] + verified.stderr[-3000:]
        verification = json.loads(verified.stdout)["verification"]
        assert verification["in_place"] == verification["edges"] == self.tally.edges
        signed = sum(len(all_digests(image)) for image in self.images.values())
        signatures = verification["signatures"]
        assert signatures["checked"] == signed * len(self.mirrors), signatures
        assert signatures["gaps"] == [], signatures["gaps"][:10]
        for held in read_holdings([m.host for m in self.mirrors]):
            assert held.incomplete == [] and wrong_tags(held, self.images) == []
            assert missing_signatures(held, self.images) == [], held.host

    def finish(self, wall_seconds: float) -> Tally:
        self.tally.wall_seconds = wall_seconds
        for schedule in self.chaos:
            for kind, count in schedule.injected.items():
                self.tally.faults[kind] = self.tally.faults.get(kind, 0) + count
        proxied = [self.source_proxy, *self.mirror_proxies]
        self.tally.requests = sum(len(p.records) for p in proxied)
        self.tally.bytes_uploaded = sum(p.bytes_relayed() for p in self.mirror_proxies)
        self.tally.content_bytes = content_bytes(self.images) * len(self.mirrors)
        return self.tally


def test_chaos_soak(
    registry_factory: Callable[..., LabRegistry],
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    size, seed = soak_size(), soak_seed()
    started = time.monotonic()
    soak: Soak | None = None
    mirrors: list[Mirror] = []
    try:
        rng = random.Random(seed)
        staging = registry_factory()
        mirrors = [Mirror(registry_factory()) for _ in range(3)]
        images = build_catalog(rng, size.images)
        asyncio.run(push_all(staging.host, [(n, i) for n, i in images.items()]))
        chaos = [Chaos(rng.randrange(2**31), storm_gap=size.storm_gap) for _ in range(4)]
        with proxies([staging.host, *(m.host for m in mirrors)], chaos) as proxied:
            soak = Soak(size, seed, tmp_path, staging, mirrors, images, proxied, chaos)
            soak.tally.seconds["staging"] = time.monotonic() - started
            soak.chaotic_runs()
            soak.converge()
            soak.everything_in_place()
    except BaseException as exc:
        exc.add_note(f"soak seed {seed}: replay with CIP_SOAK_SEED={seed}")
        raise
    finally:
        if soak is not None:
            tally = soak.finish(time.monotonic() - started)
            record_property("soak", tally.line())
            print(tally.line())
        for mirror in mirrors:
            mirror.lab.stop()  # the restarted ones: the fixture stops only those it started
    if size is LONG and soak is not None:
        tally = soak.tally
        results = Path(os.environ.get("CIP_SOAK_RESULTS", "soak-results.json"))
        results.write_text(json.dumps(vars(tally), indent=2) + "\n")
        print(f"soak results written to {results.resolve()}")


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The proxies are loopback hosts; a developer's HTTP(S)_PROXY must not reroute them."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
