"""The value-level parts of auth, retry and rate limiting: parsing, backoff bounds, the AIMD
curve on a hand-driven clock, and where credentials are found. No network."""

from __future__ import annotations

import asyncio
import base64
import email.utils
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cip.errors import UsageError
from cip.transport.challenge import parse_challenge
from cip.transport.credentials import (
    DOCKER_HUB_SERVER,
    AuthFile,
    CredentialError,
    CredentialStore,
    Secret,
    canonical_host,
    env_variable,
)
from cip.transport.ratelimit import HostLimit, RateLimitConfig
from cip.transport.responses import is_retryable_status
from cip.transport.retry import RetryPolicy, parse_retry_after


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("7") == 7.0
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(date, now=now) == pytest.approx(30.0)
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


@given(st.integers(min_value=0, max_value=40), st.floats(min_value=0, max_value=1))
def test_full_jitter_stays_within_the_cap(retry: int, draw: float) -> None:
    policy = RetryPolicy(base_delay=0.25, max_delay=10)
    assert 0 <= policy.backoff(retry, lambda: draw) <= min(10, 0.25 * 2**retry)


def test_retryable_statuses() -> None:
    assert all(is_retryable_status(s) for s in (408, 429, 500, 502, 503, 504))
    assert not any(is_retryable_status(s) for s in (400, 401, 403, 404, 501, 505))


def test_rate_limit_flags() -> None:
    config = RateLimitConfig.parse(["50", "gcr.io=20", "127.0.0.1:5000=2.5"], ["gcr.io=4"])
    assert config.rate_for("gcr.io") == 20 and config.rate_for("quay.io") == 50
    assert config.rate_for("127.0.0.1:5000") == 2.5
    assert config.concurrency_for("gcr.io") == 4 and config.concurrency_for("x") is None
    assert RateLimitConfig.parse([]).rate_for("gcr.io") is None  # adaptive by default
    for bad in ("0", "-1", "fast", "=3", "gcr.io=", "nan", "inf"):
        with pytest.raises(UsageError):
            RateLimitConfig.parse([bad])


def test_adaptive_rate_cuts_multiplicatively_and_recovers_additively() -> None:
    now = [0.0]
    limit = HostLimit(RateLimitConfig(decrease=0.5, recovery=0.1), "r", lambda: now[0])

    async def send(n: int, spacing: float) -> list[float]:
        sent = []
        for _ in range(n):
            sent.append(await limit.before_send())
            now[0] += spacing
        return sent

    sent = asyncio.run(send(40, 0.025))  # 40 requests/second, uncapped
    assert limit.current_rate() is None
    limit.throttled(sent[-1], None)
    assert limit.current_rate() == pytest.approx(20.0)  # 40/s measured, halved
    limit.throttled(sent[-2], None)  # sent before the cut: already answered by it
    assert limit.cuts == 1
    now[0] += 1.0
    assert limit.current_rate() == pytest.approx(22.0)  # +10 % of the cut rate per second
    now[0] += 4.0
    assert limit.current_rate() == pytest.approx(30.0)
    now[0] += 6.0
    assert limit.current_rate() is None  # back at the refused rate: uncapped again


def test_a_429_storm_outlasting_its_retry_after_halves_the_rate_not_the_pause() -> None:
    now = [0.0]
    limit = HostLimit(RateLimitConfig(decrease=0.5, recovery=0.1), "r", lambda: now[0])

    async def send_one() -> float:
        return await limit.before_send()

    for _ in range(40):  # 40 requests/second, uncapped
        asyncio.run(send_one())
        now[0] += 0.025
    limit.throttled(now[0] - 0.025, 1.0)  # 429, Retry-After: 1
    assert limit.current_rate() == pytest.approx(20.0)
    now[0] += 1.0  # the pause is over; the storm is not: the first request gets 429 again
    limit.throttled(asyncio.run(send_one()), 1.0)
    # One request went out in the last second, because of the pause; the rate the registry
    # refused is the one allowed (22/s after a second of recovery), halved again.
    assert limit.cuts == 2
    assert limit.current_rate() == pytest.approx(11.0)


def test_challenge_parsing() -> None:
    challenge = parse_challenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/busybox:pull",error="insufficient_scope"'
    )
    assert challenge is not None and challenge.scheme == "bearer"
    assert challenge.params["realm"] == "https://auth.docker.io/token"
    assert challenge.scopes == ("repository:library/busybox:pull",)
    basic = parse_challenge('Basic realm="cip lab"')
    assert basic is not None and basic.scheme == "basic"
    assert parse_challenge("Negotiate abc") is None and parse_challenge(None) is None


def test_docker_hub_aliases_and_env_names() -> None:
    for name in ("docker.io", "index.docker.io", DOCKER_HUB_SERVER, "registry-1.docker.io"):
        assert canonical_host(name) == "docker.io"
    assert canonical_host("https://Quay.io/v2/") == "quay.io"
    assert env_variable("127.0.0.1:5000") == "CIP_AUTH_127_0_0_1_5000"
    assert env_variable("registry-1.docker.io") == "CIP_AUTH_DOCKER_IO"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_sources_in_order_and_entry_shapes(tmp_path: Path) -> None:
    docker_dir = tmp_path / "docker"
    docker_dir.mkdir()
    (docker_dir / "config.json").write_text(
        json.dumps(
            {
                "auths": {
                    DOCKER_HUB_SERVER: {"auth": _b64("hubuser:hub:pass")},
                    "https://quay.io": {"username": "q", "password": "qp"},
                    "ghcr.io": {"identitytoken": "idt"},
                    "gcr.io": {"auth": _b64("from-docker:x")},
                }
            }
        )
    )
    auth_json = tmp_path / "auth.json"
    auth_json.write_text(json.dumps({"auths": {"gcr.io": {"auth": _b64("from-podman:y")}}}))
    env = {
        "HOME": str(tmp_path),
        "DOCKER_CONFIG": str(docker_dir),
        "REGISTRY_AUTH_FILE": str(auth_json),
        "CIP_AUTH_QUAY_IO": "from-env:z",
    }
    store = CredentialStore.from_environment(env)

    async def lookups() -> dict[str, tuple[str, str | None, str | None]]:
        out = {}
        for host in ("docker.io", "registry-1.docker.io", "quay.io", "ghcr.io", "gcr.io"):
            found = await store.get(host)
            assert found is not None
            out[host] = (
                found.username,
                found.password.reveal() if found.password else None,
                found.identity_token.reveal() if found.identity_token else None,
            )
        assert await store.get("example.com") is None
        return out

    found = asyncio.run(lookups())
    assert found["docker.io"] == found["registry-1.docker.io"] == ("hubuser", "hub:pass", None)
    assert found["quay.io"] == ("from-env", "z", None)  # environment first
    assert found["gcr.io"] == ("from-podman", "y", None)  # auth.json before config.json
    assert found["ghcr.io"] == ("", None, "idt")


def test_xdg_runtime_auth_json_and_unreadable_files(tmp_path: Path) -> None:
    runtime = tmp_path / "run" / "containers"
    runtime.mkdir(parents=True)
    (runtime / "auth.json").write_text(json.dumps({"auths": {"r.io": {"auth": _b64("u:p")}}}))
    store = CredentialStore.from_environment(
        {"HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path / "run")}
    )
    found = asyncio.run(store.get("r.io"))
    assert found is not None and found.username == "u"
    broken = tmp_path / "broken.json"
    broken.write_text('{"auths": {"r.io": {"auth": "c2VjcmV0LXZhbHVl"')  # cut short
    with pytest.raises(CredentialError) as raised:
        asyncio.run(AuthFile(broken, "docker config").get("r.io"))
    assert "c2VjcmV0LXZhbHVl" not in raised.value.render()


def test_secret_never_prints() -> None:
    secret = Secret("hunter2")
    for shown in (repr(secret), str(secret), f"{secret}", f"{secret!r}", f"{[secret]}"):
        assert "hunter2" not in shown
    assert secret == Secret("hunter2") and secret.reveal() == "hunter2"
