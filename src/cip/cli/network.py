"""How a command reaches registries: its network flags, taken as one value, and the registry
pool they describe, built in one place.

Every command that reads registries takes the same flags (`network_options` in `options.py`)
and sets up its clients the same way: TLS and plain-HTTP permissions, rate limits, credentials
(a manifest's `service-account` first, then the usual files) and the retry patience. A command
receives the flags as `network: NetworkFlags` and asks it for its pool once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Imported where used: --version and --parse-only load neither the HTTP stack nor the pool.
    from cip.model.manifest import PromoterManifest
    from cip.registry.pool import RegistryPool
    from cip.transport.circuit import RetryPolicy
    from cip.transport.credentials import CredentialStore
    from cip.transport.limits import RateLimitConfig
    from cip.transport.settings import NetworkOptions


@dataclass(frozen=True)
class NetworkFlags:
    """The values of `network_options`, named as the flags' parameters."""

    insecure: tuple[str, ...] = ()
    ca_file: str | None = None
    authfile: str | None = None
    concurrency: int = 32
    rate_limits: tuple[str, ...] = ()
    host_concurrency: tuple[str, ...] = ()
    retry_timeout: timedelta = timedelta(minutes=5)
    retry_max_backoff: timedelta = timedelta(seconds=30)

    def options(self) -> NetworkOptions:
        """TLS, plain HTTP and proxies, from the flags and the environment."""
        from cip.transport.settings import NetworkOptions

        return NetworkOptions.from_environment(
            insecure_registries=frozenset(self.insecure), ca_file=self.ca_file
        )

    def limits(self) -> RateLimitConfig:
        """`--rate-limit` and `--host-concurrency` as values; a malformed one is a UsageError.
        Commands that must refuse it before other work (even when no registry is read) call
        this first; `pool` calls it again."""
        from cip.transport.limits import RateLimitConfig

        return RateLimitConfig.parse(self.rate_limits, self.host_concurrency)

    def retry(self) -> RetryPolicy:
        return retry_policy(self.retry_timeout, self.retry_max_backoff)

    def pool(self, manifests: Sequence[PromoterManifest] = ()) -> RegistryPool:
        """The run's registry clients; `manifests` name the service accounts to ask."""
        from cip.registry.pool import RegistryPool
        from cip.transport.ratelimit import RateLimiter

        return RegistryPool(
            options=self.options(),
            limiter=RateLimiter(self.limits()),
            credentials=credential_store(manifests, self.authfile),
            retry=self.retry(),
        )


def retry_policy(timeout: timedelta, max_backoff: timedelta) -> RetryPolicy:
    """The retry policy `--retry-timeout` and `--retry-max-backoff` describe."""
    from cip.transport.circuit import RetryPolicy

    cap = max_backoff.total_seconds()
    return RetryPolicy(
        budget_seconds=timeout.total_seconds(), max_delay=cap, base_delay=min(0.5, cap)
    )


def credential_store(
    manifests: Sequence[PromoterManifest], authfile: str | None = None
) -> CredentialStore:
    """Where credentials come from: a manifest's `service-account` for its registry hosts
    (asked only once a registry refuses anonymous access), then the usual files and variables."""
    from cip.transport.credentials import CredentialStore
    from cip.transport.google import GoogleServiceAccount

    accounts: dict[str, set[str]] = {}
    for manifest in manifests:
        for spec in manifest.registries:
            if spec.service_account and spec.registry.host:
                accounts.setdefault(spec.service_account, set()).add(spec.registry.host)
    google = [GoogleServiceAccount(a, frozenset(hosts)) for a, hosts in sorted(accounts.items())]
    files = CredentialStore.from_environment(authfile=authfile).sources
    return CredentialStore([*google, *files])
