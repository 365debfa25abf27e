"""Per-host network settings: where cip connects, with which scheme, through which proxy."""

from __future__ import annotations

import ssl

import certifi

from cip.transport.settings import NetworkOptions, host_settings, is_loopback


def test_docker_hub_names_and_library_prefix() -> None:
    for name in ("docker.io", "index.docker.io"):
        settings = host_settings(name, NetworkOptions())
        assert settings.endpoint == "registry-1.docker.io"
        assert settings.repository_path("nginx") == "library/nginx"
        assert settings.repository_path("bitnami/nginx") == "bitnami/nginx"
    other = host_settings("registry.k8s.io", NetworkOptions())
    assert other.endpoint == "registry.k8s.io"
    assert other.repository_path("pause") == "pause"


def test_plain_http_only_for_loopback_and_named_insecure_hosts() -> None:
    options = NetworkOptions(insecure_registries=frozenset({"registry.internal:5000"}))
    assert host_settings("127.0.0.1:5000", options).allow_http
    assert host_settings("localhost:5000", options).allow_http
    assert host_settings("[::1]:5000", options).allow_http
    insecure = host_settings("registry.internal:5000", options)
    assert insecure.allow_http and not insecure.verify_tls  # as docker's insecure-registries
    public = host_settings("gcr.io", options)
    assert not public.allow_http and public.verify_tls
    assert isinstance(public.ssl_context(), ssl.SSLContext)
    assert host_settings("127.0.0.1:5000", options).verify_tls  # loopback TLS still verified
    assert is_loopback("127.0.0.53") and not is_loopback("10.0.0.1")


def test_proxy_environment_is_honoured_per_host() -> None:
    roots = certifi.where()
    env = {
        "HTTPS_PROXY": "http://proxy.corp:3128",
        "NO_PROXY": "internal.corp,.svc",
        "SSL_CERT_FILE": roots,
    }
    options = NetworkOptions.from_environment(env)
    assert options.default_ca_file == roots
    assert host_settings("gcr.io", options).proxies["https"] == "http://proxy.corp:3128"
    assert host_settings("registry.internal.corp", options).proxies["https"] is None
    assert host_settings("mirror.ns.svc:5000", options).proxies["https"] is None
    assert host_settings("127.0.0.1:5000", options).proxies["https"] is None
    assert NetworkOptions.from_environment({}).proxies == {}
