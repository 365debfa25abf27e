"""Where a registry host really is, and how cip may talk to it.

Network settings (TLS, plain-HTTP permission, proxy, auth and rate limits) belong to a
`host[:port]`, never to a repository path, because that is the unit a registry operator runs and
a token, a rate limit or a certificate applies to. All environment reading happens in
`NetworkOptions.from_environment`, so everything below it works on values.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

from cip.errors import UsageError

DOCKER_HUB_NAMES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
DOCKER_HUB_ENDPOINT = "registry-1.docker.io"


@dataclass(frozen=True, slots=True)
class NetworkOptions:
    """Run-wide network options, from flags and the environment."""

    insecure_registries: frozenset[str] = frozenset()
    ca_file: str | None = None  # a private CA, trusted in addition to the default roots
    default_ca_file: str | None = None  # SSL_CERT_FILE: replaces the default roots
    proxies: Mapping[str, str] | None = None  # scheme -> proxy URL (urllib's getproxies shape)
    no_proxy: str | None = None

    @classmethod
    def from_environment(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        insecure_registries: frozenset[str] = frozenset(),
        ca_file: str | None = None,
    ) -> NetworkOptions:
        """Proxy variables (HTTPS_PROXY, NO_PROXY, ...) and SSL_CERT_FILE, as curl reads them."""
        env = dict(os.environ if env is None else env)
        default_ca_file = env.get("SSL_CERT_FILE") or None
        for named, path in (("--ca-file", ca_file), ("SSL_CERT_FILE=", default_ca_file)):
            problem = ca_bundle_problem(path) if path else None
            if problem is not None:
                raise UsageError(f"{named}{'' if named.endswith('=') else ' '}{path}: {problem}")
        proxies: dict[str, str] = {}
        for scheme in ("http", "https", "all"):
            value = env.get(f"{scheme}_proxy") or env.get(f"{scheme.upper()}_PROXY")
            if value:
                proxies[scheme] = value
        return cls(
            insecure_registries=insecure_registries,
            ca_file=ca_file,
            default_ca_file=default_ca_file,
            proxies=proxies,
            no_proxy=env.get("no_proxy") or env.get("NO_PROXY"),
        )


def ca_bundle_problem(path: str) -> str | None:
    """Why `path` is no usable bundle of CA certificates (PEM), or None; checked at start-up so
    a wrong file is named at once instead of failing the first TLS connection of every edge."""
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
    except ssl.SSLError as exc:
        detail = exc.reason or re.sub(r"\s*\(_ssl\.c:\d+\)$", "", str(exc.args[-1]))
        return f"not a PEM certificate bundle (OpenSSL: {detail})"
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    return None


@dataclass(frozen=True, slots=True)
class HostSettings:
    """How to reach one `host[:port]`."""

    host: str  # as named in manifests
    endpoint: str  # host[:port] actually contacted
    allow_http: bool  # plain HTTP allowed (loopback, or --insecure-registry)
    verify_tls: bool
    ca_file: str | None
    default_ca_file: str | None
    proxies: Mapping[str, str | None]  # scheme ("http"/"https") -> proxy URL or None
    docker_hub: bool

    def repository_path(self, repository: str) -> str:
        # Docker Hub: single-component names live under library/ (docker/distribution reference).
        if self.docker_hub and "/" not in repository:
            return f"library/{repository}"
        return repository

    def ssl_context(self) -> ssl.SSLContext | bool:
        if not self.verify_tls:
            return False
        return verified_context(self.default_ca_file, self.ca_file)


@functools.lru_cache(maxsize=16)
def verified_context(default_ca_file: str | None, ca_file: str | None) -> ssl.SSLContext:
    """A TLS context per set of trusted CAs, shared by every client of a process.

    Loading the CA bundle costs ~50 ms; a run builds clients for every host (transport and
    token service each), so building one per client cost a third of a second at start-up. A
    context is safe to share once configured, and this one is never changed after creation.
    """
    import certifi  # only when TLS is used: its import costs ~25 ms of every start-up

    context = ssl.create_default_context(cafile=default_ca_file or certifi.where())
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


def split_host_port(host: str) -> tuple[str, int | None]:
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        return name, int(rest[1:]) if rest.startswith(":") else None
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit():
        return name, int(port)
    return host, None


def is_loopback(host: str) -> bool:
    name, _ = split_host_port(host)
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _bypasses_proxy(hostname: str, no_proxy: str | None) -> bool:
    """NO_PROXY as curl reads it: `*`, or host names matching themselves and their subdomains."""
    for entry in (no_proxy or "").replace(" ", "").split(","):
        entry = entry.lstrip(".").lower()
        if entry == "*":
            return True
        if entry and (hostname.lower() == entry or hostname.lower().endswith("." + entry)):
            return True
    return False


def host_settings(host: str, options: NetworkOptions) -> HostSettings:
    """Settings for `host[:port]`; docker.io and its aliases go to registry-1.docker.io."""
    docker_hub = host in DOCKER_HUB_NAMES
    endpoint = DOCKER_HUB_ENDPOINT if docker_hub else host
    explicitly_insecure = host in options.insecure_registries
    hostname, _ = split_host_port(endpoint)
    proxies: dict[str, str | None] = {"http": None, "https": None}
    if not _bypasses_proxy(hostname, options.no_proxy) and not is_loopback(endpoint):
        configured = options.proxies or {}
        for scheme in ("http", "https"):
            proxies[scheme] = configured.get(scheme) or configured.get("all")
    return HostSettings(
        host=host,
        endpoint=endpoint,
        allow_http=explicitly_insecure or is_loopback(endpoint),
        # docker skips verification only for registries named insecure, not for loopback.
        verify_tls=not explicitly_insecure,
        ca_file=options.ca_file,
        default_ca_file=options.default_ca_file,
        proxies=proxies,
        docker_hub=docker_hub,
    )
