"""`cip audit serve` as a process: it drains requests in flight on SIGTERM and exits 0, and a
port it cannot listen on is a usage error naming it."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

from tests.e2e.auditor import start_auditor
from tests.e2e.conftest import run_cip
from tests.lab.fault_proxy import PASS, Fault, FaultProxy, ProxyRequest, slow
from tests.lab.images import oci_image
from tests.lab.registry_lab import LabRegistry

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plain.yaml"


def test_sigterm_drains_a_request_in_flight_then_exits_0(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging, prod = registry_factory(), registry_factory()
    promoted, unknown = oci_image(21).digest, oci_image(22).digest
    slowed: list[str] = []

    def schedule(request: ProxyRequest) -> Fault:
        # Production answers manifest reads slowly: the judge is still reading at SIGTERM.
        if "/manifests/" not in request.path:
            return PASS
        slowed.append(request.path)
        return slow(2.0)

    async def scenario() -> tuple[int, dict[str, object], int, float]:
        async with FaultProxy(prod.host, schedule) as proxy:
            manifest = tmp_path / "m.yaml"
            manifest.write_text(
                f"registries:\n- name: {staging.host}/s\n  src: true\n- name: {proxy.host}/p\n"
                f'images:\n- name: a\n  dmap:\n    "{promoted}": ["1"]\n'
            )
            auditor = await asyncio.to_thread(
                start_auditor, ["--manifest", str(manifest), "--pubsub-auth=none"], tmp_path
            )
            payload = {"action": "INSERT", "digest": f"{proxy.host}/p/a@{unknown}"}
            posted = asyncio.create_task(asyncio.to_thread(auditor.pubsub, payload, "in-flight"))
            while not slowed:
                await asyncio.sleep(0.02)
            auditor.process.send_signal(signal.SIGTERM)  # while production is still reading
            signalled = time.monotonic()
            status, answer = await posted
            waited = time.monotonic() - signalled
            # One SIGTERM, as Kubernetes sends: the auditor must exit on it alone.
            code = await asyncio.to_thread(auditor.process.wait, 30)
            return status, answer, code, waited

    status, answer, code, waited = asyncio.run(scenario())
    assert waited > 1.0  # the answer came after the signal: the request was drained
    assert status == 200, answer
    assert answer["events"][0]["rule"] == "not-promoted"  # type: ignore[index]
    assert code == 0


def test_a_port_in_use_is_a_usage_error_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cip(
            "audit", "serve", "--manifest", str(EXAMPLE), "--pubsub-auth=none", f"--port={port}"
        )
    assert done.returncode == 2
    assert f"cannot listen on --host=127.0.0.1 --port={port}" in done.stderr
    assert "Traceback" not in done.stderr


def test_help_names_the_routes_and_every_flag() -> None:
    serve = run_cip("audit", "serve", "--help")
    assert serve.returncode == 0
    for text in ("POST /pubsub", "POST /distribution", "POST /refresh", "--pubsub-auth", "--pubsub-audience", "--pubsub-allowed-email", "--google-certs-url", "--manifests-git", "--manifests-branch", "--manifests-path", "--refresh", "--reconcile", "--allow-deletions", "CIP_AUDIT_DISTRIBUTION_TOKEN"):  # fmt: skip
        assert text in serve.stdout, text
    top = run_cip("--help")
    assert "audit" in top.stdout
