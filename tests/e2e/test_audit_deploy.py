"""The auditor's deployment files, checked as far as this machine can run them.

Prometheus' and Alertmanager's own tools check the rule file (including its unit tests), the
Prometheus configuration and the Alertmanager routing. Kubernetes and Cloud Run cannot run
here: their files are parsed, and the container arguments are parsed by `cip audit serve`'s
own flag parser, so a flag that does not exist, a bad duration or a missing value fails here,
and ports, probes, labels and selectors must agree with each other.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from cip.audit.metrics import AuditMetrics
from cip.cli.audit_serve import serve_command
from tests.cli import REPO

DEPLOY = REPO / "deploy" / "auditor"
RULES = DEPLOY / "prometheus" / "cip-audit.rules.yaml"
ALERTMANAGER = DEPLOY / "alertmanager" / "alertmanager.yaml"


def tool(name: str) -> str:
    found = shutil.which(name)
    assert found is not None, f"{name} is not installed (Debian packages prometheus, prometheus-alertmanager)"  # fmt: skip
    return found


def run(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(args, capture_output=True, text=True, cwd=cwd, check=False, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def serve_flags(args: list[str]) -> dict[str, Any]:
    """The container's arguments as `cip audit serve` parses them (never run)."""
    assert args[:2] == ["audit", "serve"], args
    with serve_command.make_context("serve", list(args[2:])) as ctx:
        return dict(ctx.params)


def test_the_rule_file_passes_promtool_and_its_unit_tests() -> None:
    promtool = tool("promtool")
    assert "SUCCESS: 8 rules found" in run(promtool, "check", "rules", str(RULES))
    assert "SUCCESS" in run(
        promtool, "test", "rules", "cip-audit.rules.test.yaml", cwd=RULES.parent
    )


def test_the_rules_use_only_series_the_auditor_exports() -> None:
    metrics = AuditMetrics()
    metrics.follow_git()
    exported = {sample.name for family in metrics.registry.collect() for sample in family.samples}
    rules = [rule for group in documents(RULES)[0]["groups"] for rule in group["rules"]]
    used = {name for rule in rules for name in re.findall(r"\bcip_audit_\w+", rule["expr"])}
    assert used and used <= exported, used - exported
    assert all(rule["labels"]["service"] == "cip-audit" for rule in rules)
    rejected = next(rule for rule in rules if rule["alert"] == "CipAuditRejectedChange")
    assert rejected["expr"] == 'increase(cip_audit_events_total{verdict="rejected"}[5m]) > 0'


def test_the_prometheus_configuration_loads_the_rules_and_scrapes_the_service(
    tmp_path: Path,
) -> None:
    config = documents(DEPLOY / "prometheus" / "prometheus.yaml")[0]
    assert config["rule_files"] == ["cip-audit.rules.yaml"]
    (job,) = config["scrape_configs"]
    assert (job["job_name"], job["metrics_path"]) == ("cip-audit", "/metrics")
    keep = {tuple(r["source_labels"]): r["regex"] for r in job["relabel_configs"] if r.get("action") == "keep"}  # fmt: skip
    service = _kubernetes()["Service"]
    assert keep[("__meta_kubernetes_service_label_app_kubernetes_io_name",)] == service["metadata"]["labels"]["app.kubernetes.io/name"]  # fmt: skip
    assert keep[("__meta_kubernetes_endpoint_port_name",)] == service["spec"]["ports"][0]["name"]
    # Debian's Prometheus is built without Kubernetes discovery: promtool checks the rest of
    # the file with the discovery swapped for a static target.
    job["static_configs"] = [{"targets": ["127.0.0.1:8080"]}]
    del job["kubernetes_sd_configs"]
    shutil.copy(RULES, tmp_path / RULES.name)
    (tmp_path / "prometheus.yaml").write_text(yaml.safe_dump(config))
    assert "SUCCESS" in run(tool("promtool"), "check", "config", str(tmp_path / "prometheus.yaml"))


def test_alertmanager_routes_the_auditors_alerts_to_its_webhooks() -> None:
    amtool = tool("amtool")
    assert "SUCCESS" in run(amtool, "check-config", str(ALERTMANAGER))
    routes = {
        ("critical", "CipAuditRejectedChange"): "cip-audit-security",
        ("warning", "CipAuditManifestsStale"): "cip-audit-operators",
    }
    for (severity, alert), receiver in routes.items():
        found = run(amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER}", "service=cip-audit", f"severity={severity}", f"alertname={alert}")  # fmt: skip
        assert found.splitlines()[0].strip() == receiver, found


def _kubernetes() -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in documents(DEPLOY / "kubernetes" / "cip-audit.yaml")}


def test_the_kubernetes_deployment_runs_cip_audit_serve_on_the_port_its_service_and_probes_use() -> (
    None
):
    objects = _kubernetes()
    deployment, service = objects["Deployment"], objects["Service"]
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    flags = serve_flags(container["args"])
    assert (flags["host"], flags["port"]) == ("0.0.0.0", 8080)
    assert flags["manifests_git"] and flags["manifests_path"] == "registry.k8s.io"
    assert flags["pubsub_auth"] == "oidc" and flags["pubsub_audience"] and flags["pubsub_emails"]
    (port,) = container["ports"]
    assert (port["name"], port["containerPort"]) == ("http", flags["port"])
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    env = {e["name"]: e for e in container["env"]}
    assert env["CIP_AUDIT_DISTRIBUTION_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "cip-audit"
    # The manifests are fetched under TMPDIR, which must be writable with a read-only root.
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert (
        container["securityContext"]["readOnlyRootFilesystem"] and env["TMPDIR"]["value"] in mounts
    )
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert pod["spec"]["terminationGracePeriodSeconds"] > flags["drain_timeout"].total_seconds()
    monitor = documents(DEPLOY / "kubernetes" / "servicemonitor.yaml")[0]
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    assert container["image"] == _cloud_run_container()["image"]


def _cloud_run_container() -> dict[str, Any]:
    service = documents(DEPLOY / "cloudrun" / "service.yaml")[0]
    assert (service["apiVersion"], service["kind"]) == ("serving.knative.dev/v1", "Service")
    (container,) = service["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def test_cloud_run_and_the_push_subscription_agree_on_endpoint_audience_and_account() -> None:
    container = _cloud_run_container()
    flags = serve_flags(container["args"])
    # Cloud Run chooses the port through $PORT: no --port, the container port is its default.
    assert flags["port"] is None and container["ports"][0]["containerPort"] == 8080
    assert flags["host"] == "0.0.0.0" and flags["pubsub_auth"] == "oidc"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    script = DEPLOY / "pubsub" / "push-subscription.sh"
    run("bash", "-n", str(script))
    text = script.read_text()
    variables = dict(re.findall(r"^([A-Z]+)=([^$(\s]+)$", text, re.MULTILINE))
    pusher = text.split("PUSHER=", 1)[1].split()[0].replace("${PROJECT}", variables["PROJECT"])
    assert flags["pubsub_emails"] == (pusher,)
    assert flags["pubsub_audience"].endswith("/pubsub")
    create = text[text.index("gcloud pubsub subscriptions create") :]
    for option in ('--topic=gcr', '--push-endpoint="${URL}/pubsub"', '--push-auth-service-account="$PUSHER"', '--push-auth-token-audience="$AUDIENCE"'):  # fmt: skip
        assert option in create, option
    assert "AUDIENCE=${URL}/pubsub" in text


def test_the_container_image_installs_the_audit_extra_and_git() -> None:
    text = (DEPLOY / "Containerfile").read_text().replace("\\\n", " ")
    instructions = [
        line.split(None, 1) for line in text.splitlines() if line and not line.startswith("#")
    ]
    runs = [words.split() for name, words in instructions if name == "RUN"]
    assert any("install" in command and "git" in command for command in runs)
    assert any("'/src[audit]'" in command for command in runs)
    assert ["ENTRYPOINT", '["cip"]'] in instructions
    assert ["EXPOSE", "8080"] in instructions
