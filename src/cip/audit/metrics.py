"""The auditor's Prometheus metrics, for alerting on rejections (Alertmanager, not cip, pages).

Each service has its own registry, so two apps in one process (tests) count separately.
Every label combination starts at 0, so an alert on `increase(...[5m]) > 0` fires on the first
rejection instead of waiting for the series to appear.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from cip.audit.pushauth import REFUSALS
from cip.audit.reconcile import ReconcileResult
from cip.audit.refresh import REFRESH_OUTCOMES, RefreshResult
from cip.audit.verdicts import Decision, Verdict

SOURCES = ("pubsub", "distribution")
ACTIONS = ("push", "delete", "invalid")  # INSERT counts as push, DELETE as delete
ROUTES = ("/pubsub", "/distribution")  # the routes that judge events
TOKEN_REFUSAL = "bad-token"  # a missing or wrong bearer token (/distribution, /refresh)


class AuditMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.events = Counter(
            "cip_audit_events",
            "Registry change events judged, by source, action and verdict.",
            ["source", "action", "verdict"],
            registry=self.registry,
        )
        self.reconcile_runs = Counter(
            "cip_audit_reconcile_runs",
            "Reconcile runs, by outcome: ok (all verified), problems, failed (could not run).",
            ["outcome"],
            registry=self.registry,
        )
        self.reconcile_items = Gauge(
            "cip_audit_reconcile_items",
            "Tags and digests the last reconcile judged, by verdict.",
            ["verdict"],
            registry=self.registry,
        )
        self.reconcile_finished = Gauge(
            "cip_audit_reconcile_last_finished_timestamp_seconds",
            "When the last reconcile finished (Unix time); 0 before the first.",
            registry=self.registry,
        )
        self.latency = Histogram(
            "cip_audit_request_duration_seconds",
            "Time to answer a POST, by route.",
            ["route"],
            registry=self.registry,
        )
        self.unauthorized = Counter(
            "cip_audit_unauthorized",
            "Requests refused before their body was read, by route and reason "
            "(401; certificates-unavailable: 503).",
            ["route", "reason"],
            registry=self.registry,
        )
        for source in SOURCES:
            for action in ACTIONS:
                for verdict in Verdict:
                    self.events.labels(source, action, str(verdict))
        for outcome in ("ok", "problems", "failed"):
            self.reconcile_runs.labels(outcome)
        for verdict in Verdict:
            self.reconcile_items.labels(str(verdict))
        for route in ROUTES:
            self.latency.labels(route)
        for refusal in REFUSALS:
            self.unauthorized.labels("/pubsub", str(refusal))
        for route in ("/distribution", "/refresh"):
            self.unauthorized.labels(route, TOKEN_REFUSAL)

    def follow_git(self) -> None:
        """The series of manifests followed in git (absent otherwise, so no alert on them
        can fire for a service that reads files)."""
        self.refreshes = Counter(
            "cip_audit_manifests_refreshes",
            "Refreshes of the manifests from git, by outcome: loaded (a new commit), "
            "unchanged, invalid or failed (the previous set stays).",
            ["outcome"],
            registry=self.registry,
        )
        self.manifests_current = Gauge(
            "cip_audit_manifests_current_timestamp_seconds",
            "When the manifests in use were last found to be the branch's newest commit "
            "(Unix time): a stale set stops advancing it.",
            registry=self.registry,
        )
        for outcome in REFRESH_OUTCOMES:
            self.refreshes.labels(str(outcome))

    def refreshed(self, result: RefreshResult) -> None:
        self.refreshes.labels(str(result.outcome)).inc()
        if result.current:
            self.manifests_current.set(result.at)

    def count(self, decision: Decision) -> None:
        event = decision.event
        if event.source in SOURCES:  # reconcile has its own series
            self.events.labels(event.source, event.kind, str(decision.verdict)).inc()

    def reconciled(self, result: ReconcileResult | None) -> None:
        """Record a finished reconcile; None when it could not run at all."""
        self.reconcile_finished.set(time.time())
        if result is None:
            self.reconcile_runs.labels("failed").inc()
            return
        for verdict, count in result.counts().items():
            self.reconcile_items.labels(verdict).set(count)
        self.reconcile_runs.labels("problems" if result.problems else "ok").inc()
