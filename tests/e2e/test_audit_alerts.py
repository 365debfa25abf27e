"""The alerting chain end to end: a rogue push reaches the auditor, Prometheus scrapes the
rejection, the shipped rule fires, and the shipped Alertmanager routing delivers it to the
security webhook.

Prometheus and Alertmanager are Debian's, started by PID. The rule file is used as shipped;
the Alertmanager file as shipped with only its webhook URLs pointed here and its waits cut
short; Prometheus scrapes and evaluates every second so the test stays quick.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.e2e.auditor import running_auditor
from tests.lab.alerting import alertmanager, prometheus, query, wait_until, webhook

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "auditor"
PROMOTED = "sha256:" + "0" * 64
ROGUE = "sha256:" + "6" * 64


def local_alertmanager_config(base_url: str) -> dict[str, Any]:
    """The shipped routing, each webhook sent to `base_url/<receiver>`, waits cut to 1 s."""
    config: dict[str, Any] = yaml.safe_load(
        (DEPLOY / "alertmanager" / "alertmanager.yaml").read_text()
    )
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = f"{base_url}/{receiver['name']}"
    routes = [config["route"], *config["route"].get("routes", [])]
    for route in routes:
        route.update(group_wait="1s", group_interval="1s")
    return config


def test_a_rogue_push_fires_the_shipped_alert_to_the_security_webhook(tmp_path: Path) -> None:
    manifest = tmp_path / "prod.yaml"
    manifest.write_text(
        "registries:\n- name: staging.lab.example/app\n  src: true\n- name: prod.lab.example/app\n"
        f'images:\n- name: web\n  dmap:\n    "{PROMOTED}": ["1.0"]\n'
    )
    with (
        running_auditor(["--manifest", str(manifest), "--pubsub-auth=none"], tmp_path) as auditor,
        webhook() as (hook, hook_url),
        alertmanager(local_alertmanager_config(hook_url), tmp_path / "alertmanager") as am_url,
    ):
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": ["cip-audit.rules.yaml"],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [am_url.removeprefix("http://")]}]}]},
            "scrape_configs": [{"job_name": "cip-audit", "static_configs": [{"targets": [f"127.0.0.1:{auditor.port}"]}]}],
        }  # fmt: skip
        rules = {"cip-audit.rules.yaml": DEPLOY / "prometheus" / "cip-audit.rules.yaml"}
        with prometheus(config, tmp_path / "prometheus", rules) as prom_url:
            # A verified push and a scrape of the counters at 0 first: increase() needs them.
            status, _ = auditor.pubsub({"action": "INSERT", "digest": f"prod.lab.example/app/web@{PROMOTED}"}, "ok")  # fmt: skip
            assert status == 200
            wait_until(
                lambda: query(prom_url, 'cip_audit_events_total{verdict="verified",source="pubsub",action="push"} == 1'),
                "Prometheus to scrape the auditor",
            )  # fmt: skip
            assert query(prom_url, 'ALERTS{alertname="CipAuditRejectedChange"}') == []
            rogue = {"action": "INSERT", "digest": f"prod.lab.example/app/rogue@{ROGUE}", "tag": "prod.lab.example/app/rogue:latest"}  # fmt: skip
            status, answer = auditor.pubsub(rogue, "rogue")
            assert (status, answer["events"][0]["verdict"]) == (200, "rejected")
            alerts = wait_until(
                lambda: hook.alerts("/cip-audit-security"), "the alert at the security webhook"
            )
    alert = alerts[0]
    assert alert["status"] == "firing"
    assert alert["labels"]["alertname"] == "CipAuditRejectedChange"
    assert alert["labels"]["severity"] == "critical"
    assert (alert["labels"]["source"], alert["labels"]["action"]) == ("pubsub", "push")
    assert alert["annotations"]["summary"] == "A change to a production registry is not in the manifests (pubsub push)"  # fmt: skip
    assert hook.alerts("/cip-audit-operators") == []  # critical alerts go to security only
