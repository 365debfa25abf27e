"""The auditor behind Google's real Pub/Sub push machinery (the emulator): a `gcr` topic, a push
subscription to `cip audit serve`, GCR-format messages published and judged.

The emulator delivers as Pub/Sub does: the envelope with both spellings of the message id, one
delivery per message once it is answered 200 (a rejection included), and deliveries again
while the auditor answers 500 (a registry it could not read).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.e2e.auditor import RunningAuditor, running_auditor
from tests.lab.pubsub_emulator import pubsub_emulator
from tests.lab.registry_lab import LabRegistry

PROMOTED = "sha256:" + "0" * 64
ROGUE = "sha256:" + "9" * 64
UNREACHABLE = "127.0.0.1:9"  # discard port: nothing listens, every read fails


def wait_for_decisions(
    auditor: RunningAuditor, done: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 60
    while True:
        lines = auditor.decision_lines()
        if done(lines):
            return lines
        assert time.monotonic() < deadline, f"pushes did not arrive: {lines}"
        time.sleep(0.1)


def test_gcr_messages_pushed_by_the_emulator_get_their_verdicts(
    lab_registry: LabRegistry, tmp_path: Path
) -> None:
    prod = lab_registry.host
    manifest = tmp_path / "gcr.yaml"
    manifest.write_text(
        f"registries:\n- name: {prod}/staging\n  src: true\n- name: {prod}/prod\n"
        f"- name: {UNREACHABLE}/mirror\n"
        f'images:\n- name: app\n  dmap:\n    "{PROMOTED}": ["1.0"]\n'
    )
    messages = {
        "promoted": ({"action": "INSERT", "digest": f"{prod}/prod/app@{PROMOTED}", "tag": f"{prod}/prod/app:1.0"}, "verified", "promoted"),
        "rogue": ({"action": "INSERT", "digest": f"{prod}/prod/app@{ROGUE}", "tag": f"{prod}/prod/app:latest"}, "rejected", "not-promoted"),
        "moved": ({"action": "INSERT", "digest": f"{prod}/prod/app@{ROGUE}", "tag": f"{prod}/prod/app:1.0"}, "rejected", "tag-mismatch"),
        "deleted": ({"action": "DELETE", "tag": f"{prod}/prod/app:1.0"}, "rejected", "deletion"),
        "invalid": ({"action": "INSERT"}, "rejected", "invalid-message"),
    }  # fmt: skip
    with (
        pubsub_emulator(tmp_path / "emulator") as emulator,
        running_auditor(["--manifest", str(manifest), "--pubsub-auth=none"], tmp_path) as auditor,
    ):
        emulator.create_topic("gcr")
        emulator.create_push_subscription("cip-audit", "gcr", f"{auditor.url}/pubsub")
        ids = {emulator.publish("gcr", payload): name for name, (payload, _, _) in messages.items()}
        lines = wait_for_decisions(auditor, lambda lines: len(lines) >= len(messages))
        judged = {ids[line["event"]["id"]]: (line["verdict"], line["rule"]) for line in lines}
        assert judged == {name: (verdict, rule) for name, (_, verdict, rule) in messages.items()}
        # A rogue digest on a registry that cannot be read is an error: answered 500, and the
        # emulator delivers it again (each delivery judged anew) until it can be decided.
        unsure = emulator.publish("gcr", {"action": "INSERT", "digest": f"{UNREACHABLE}/mirror/app@{ROGUE}"})  # fmt: skip
        lines = wait_for_decisions(
            auditor, lambda lines: sum(line["event"]["id"] == unsure for line in lines) >= 2
        )
        assert {line["verdict"] for line in lines if line["event"]["id"] == unsure} == {"error"}
        # Every message answered 200 was delivered once: no second line for it.
        assert sorted(ids[line["event"]["id"]] for line in lines if line["event"]["id"] in ids) == sorted(messages)  # fmt: skip
        assert auditor.events_total("pubsub", "push", "rejected") == 2
        assert auditor.events_total("pubsub", "delete", "rejected") == 1
        assert auditor.events_total("pubsub", "invalid", "rejected") == 1
        assert auditor.events_total("pubsub", "push", "verified") == 1
