"""A synthetic registry: the Distribution HTTP API on 127.0.0.1, answered from data in memory.

Why it exists: registry.k8s.io's manifests make 720,478 edges over 9,834 destination
repositories. Filling real `docker-registry` processes with that many tags takes hours and each
of their requests costs ~2 ms of CPU, so the registry, not cip, would be measured. This server
answers reads from dicts (`bench.sim_content`), one host per port, and counts every request by
host, method, kind and repository, which is what the scale benchmarks judge.

What it speaks: `GET /v2/`, `GET /v2/_catalog` (`n`, `last`, `Link`), `GET .../tags/list`
(`n`, `last`, `Link`; with `google`, Google's `manifest` and `child` extension), `HEAD`/`GET`
of manifests by tag or digest. No blobs (404) and no writes (405): the other benchmarks
measure copies with real registries. `GET /_sim/requests` (not counted) returns the counts and
the server's own CPU time, so a benchmark can show the simulator was not the bottleneck.

Three ways to run it: `SimulatorServer` inside a running event loop, `running_simulator` (a
background thread, for tests that run cip as a subprocess), and `SimulatorProcess` /
`python -m bench.registry_sim SPEC.json --ready FILE` (its own process, for benchmarks, so its
CPU is not the harness's).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from aiohttp import web

from bench.sim_content import SimHost, hosts_from_spec, spec_json


class SimRequest(NamedTuple):
    host: str  # the simulated host's name, not its port
    method: str
    kind: str  # ping, catalog, tags, manifest, blob, other
    repository: str  # "" for ping and catalog
    status: int


@dataclass
class RequestLog:
    """Requests seen, with methods for the questions benchmarks and tests ask."""

    counts: Counter[SimRequest]
    cpu_seconds: float = 0.0

    def total(self, **match: str | int) -> int:
        return sum(n for r, n in self.counts.items() if _matches(r, match))

    def by_repository(self, **match: str | int) -> Counter[tuple[str, str]]:
        """(host, repository) -> requests, for the requests matching `match`."""
        out: Counter[tuple[str, str]] = Counter()
        for request, n in self.counts.items():
            if request.repository and _matches(request, match):
                out[(request.host, request.repository)] += n
        return out

    def to_json(self) -> dict[str, Any]:
        rows = [[*r, n] for r, n in sorted(self.counts.items())]
        return {"requests": rows, "cpu_seconds": self.cpu_seconds}

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> RequestLog:
        counts = Counter({SimRequest(*row[:5]): int(row[5]) for row in body["requests"]})
        return cls(counts, float(body.get("cpu_seconds", 0.0)))


def _matches(request: SimRequest, match: Mapping[str, str | int]) -> bool:
    return all(getattr(request, key) == value for key, value in match.items())


def _error(status: int, code: str, message: str) -> web.Response:
    body = json.dumps({"errors": [{"code": code, "message": message}]})
    return web.Response(status=status, text=body, content_type="application/json")


class SimulatorServer:
    """Every host on its own 127.0.0.1 port, in the running event loop."""

    def __init__(self, hosts: Iterable[SimHost]) -> None:
        self.hosts = list(hosts)
        self.addresses: dict[str, str] = {}  # host name -> "127.0.0.1:PORT"
        self.counts: Counter[SimRequest] = Counter()
        self._runners: list[web.AppRunner] = []

    async def start(self) -> None:
        for host in self.hosts:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", functools.partial(self._handle, host))
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            self.addresses[host.name] = f"127.0.0.1:{port}"
            self._runners.append(runner)

    async def close(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
        self._runners = []

    def log(self) -> RequestLog:
        return RequestLog(Counter(self.counts), time.process_time())

    async def _handle(self, host: SimHost, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith("/_sim/"):
            return self._control(path)
        kind, repository, response = self._answer(host, request.method, path, request.query)
        self.counts[SimRequest(host.name, request.method, kind, repository, response.status)] += 1
        return response

    def _control(self, path: str) -> web.Response:
        if path == "/_sim/requests":
            return web.json_response(self.log().to_json())
        if path == "/_sim/reset":
            self.counts.clear()
            return web.json_response({})
        return _error(404, "NOT_FOUND", path)

    def _answer(
        self, host: SimHost, method: str, path: str, query: Mapping[str, str]
    ) -> tuple[str, str, web.Response]:
        if path in ("/v2/", "/v2"):
            return "ping", "", web.json_response({})
        if path == "/v2/_catalog":
            return "catalog", "", self._catalog(host, query)
        if not path.startswith("/v2/"):
            return "other", "", _error(404, "NOT_FOUND", path)
        rest = path[4:]
        if rest.endswith("/tags/list"):
            repository = rest[: -len("/tags/list")]
            return "tags", repository, self._tags(host, method, repository, query)
        repository, sep, reference = rest.rpartition("/manifests/")
        if sep:
            return "manifest", repository, self._manifest(host, method, repository, reference)
        repository, sep, _ = rest.rpartition("/blobs/")
        if sep:
            return "blob", repository, _error(404, "BLOB_UNKNOWN", "the simulator holds no blobs")
        return "other", "", _error(404, "NOT_FOUND", path)

    def _catalog(self, host: SimHost, query: Mapping[str, str]) -> web.Response:
        names = sorted(host.content.repositories)
        return _paged("/v2/_catalog", "repositories", names, query, {})

    def _tags(
        self, host: SimHost, method: str, repository: str, query: Mapping[str, str]
    ) -> web.Response:
        if method != "GET":
            return _error(405, "UNSUPPORTED", f"{method} tags/list")
        if "n" in query and not host.google:  # Google answers every tag at once
            repo = host.content.repositories.get(repository)
            if repo is None:
                return _error(404, "NAME_UNKNOWN", f"repository {repository} not known")
            head = {"name": repository}
            return _paged(f"/v2/{repository}/tags/list", "tags", sorted(repo.tags), query, head)
        body = host.content.listing(repository, host.google)
        if body is None:
            return _error(404, "NAME_UNKNOWN", f"repository {repository} not known")
        return web.Response(body=body, content_type="application/json")

    def _manifest(
        self, host: SimHost, method: str, repository: str, reference: str
    ) -> web.Response:
        if method not in ("GET", "HEAD"):
            return _error(405, "UNSUPPORTED", "the simulator is read-only")
        repo = host.content.repositories.get(repository)
        if repo is None:
            return _error(404, "NAME_UNKNOWN", f"repository {repository} not known")
        digest = reference if ":" in reference else repo.tags.get(reference)
        item = repo.manifests.get(digest) if digest is not None else None
        if digest is None or item is None:
            return _error(404, "MANIFEST_UNKNOWN", f"{repository}:{reference} not known")
        headers = {
            "Docker-Content-Digest": digest,
            "Content-Type": item.media_type,
            "Content-Length": str(item.size),
        }
        if method == "HEAD":
            return web.Response(headers=headers)
        if item.data is None:
            return _error(501, "UNSUPPORTED", f"no bytes held for {repository}@{digest}")
        del headers["Content-Length"]
        return web.Response(body=item.data, headers=headers)


def _paged(
    url: str, key: str, names: list[str], query: Mapping[str, str], head: Mapping[str, str]
) -> web.Response:
    """One page after `last`, of `n` names, with a `Link` to the next (distribution-spec)."""
    last = query.get("last")
    if last:
        names = [n for n in names if n > last]
    headers: dict[str, str] = {}
    if "n" in query:
        try:
            size = int(query["n"])
        except ValueError:
            return _error(400, "PAGINATION_NUMBER_INVALID", f"n={query['n']}")
        if len(names) > size:
            names = names[:size]
            headers["Link"] = f'<{url}?n={size}&last={names[-1]}>; rel="next"'
    return web.json_response({**head, key: names}, headers=headers)


# -- running it ---------------------------------------------------------------------------------


@dataclass
class RunningSimulator:
    addresses: dict[str, str]  # host name -> "127.0.0.1:PORT"
    _server: SimulatorServer
    _loop: asyncio.AbstractEventLoop

    def log(self) -> RequestLog:
        """A snapshot of the counts, taken in the server's loop."""

        async def snapshot() -> RequestLog:
            return self._server.log()

        return asyncio.run_coroutine_threadsafe(snapshot(), self._loop).result(10)

    def reset(self) -> None:
        self._loop.call_soon_threadsafe(self._server.counts.clear)


@contextmanager
def running_simulator(hosts: Iterable[SimHost]) -> Iterator[RunningSimulator]:
    """The simulator in a background thread of this process, stopped on exit."""
    loop = asyncio.new_event_loop()
    server = SimulatorServer(hosts)
    thread = threading.Thread(target=loop.run_forever, name="registry-sim", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(30)
        yield RunningSimulator(dict(server.addresses), server, loop)
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


class SimulatorProcess:
    """`python -m bench.registry_sim` as a child process; stopped by SIGTERM to its own PID."""

    def __init__(self, hosts: Iterable[SimHost], folder: Path) -> None:
        spec, ready = folder / "sim-spec.json", folder / "sim-ready.json"
        spec.write_text(json.dumps(spec_json(hosts)))
        ready.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.registry_sim", str(spec), "--ready", str(ready)],
            cwd=Path(__file__).resolve().parents[1],
        )
        deadline = time.monotonic() + 120
        while not ready.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the registry simulator did not start ({spec})")
            time.sleep(0.02)
        self.addresses: dict[str, str] = json.loads(ready.read_text())

    def _get(self, path: str) -> Any:
        address = next(iter(self.addresses.values()))
        with urllib.request.urlopen(f"http://{address}{path}", timeout=60) as answer:
            return json.load(answer)

    def log(self) -> RequestLog:
        return RequestLog.from_json(self._get("/_sim/requests"))

    def reset(self) -> None:
        self._get("/_sim/reset")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> SimulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def _serve(spec: Path, ready: Path) -> None:
    server = SimulatorServer(hosts_from_spec(json.loads(spec.read_text())))
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    with tempfile.NamedTemporaryFile("w", dir=ready.parent, delete=False) as partial:
        json.dump(server.addresses, partial)
    Path(partial.name).rename(ready)  # appears whole, never half-written
    await stop.wait()
    await server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve a synthetic registry content set.")
    parser.add_argument("spec", type=Path, help="JSON content set (see bench.sim_content)")
    parser.add_argument("--ready", type=Path, required=True, help="write host -> address here")
    args = parser.parse_args()
    asyncio.run(_serve(args.spec, args.ready))


if __name__ == "__main__":
    main()
