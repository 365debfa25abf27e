"""Registry credentials, found where docker, podman and crane keep them.

Users already logged in with those tools, so cip reads the same places instead of inventing a
login. Sources are asked in this order, first answer wins, per `host[:port]`:

1. environment: `CIP_AUTH_<HOST>=username:password`, where `<HOST>` is the registry's
   `host[:port]` upper-cased with every character other than A-Z and 0-9 replaced by `_`
   (`CIP_AUTH_GCR_IO`, `CIP_AUTH_127_0_0_1_5000`, `CIP_AUTH_DOCKER_IO` for Docker Hub);
   meant for CI, where secrets arrive as variables;
2. containers `auth.json`: `--authfile FILE` (skopeo's flag), else `$REGISTRY_AUTH_FILE`, else
   `$XDG_RUNTIME_DIR/containers/auth.json` (podman, skopeo, buildah);
3. docker `config.json` in `$DOCKER_CONFIG`, else `~/.docker` (docker, crane).

Both files have the same shape: `credHelpers` (host -> helper), then `credsStore`, then `auths`
(`auth` = base64 `user:password`, or `username`/`password`, or `identitytoken`). A helper is
`docker-credential-NAME get` with the server on stdin and JSON on stdout. Host-level entries
only: namespaced `auth.json` keys (`quay.io/org`) are ignored.

A secret is a `Secret`: its repr and str are masked, so it cannot leak into logs, errors,
reports or JSON output by accident; only `reveal()` returns it, at the moment of sending. Every
source describes itself by how it was chosen and where it is (`DOCKER_CONFIG /ci/config.json`),
so a refusal can name the credentials that were sent without showing them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cip.errors import RegistryError
from cip.transport.settings import DOCKER_HUB_NAMES

DOCKER_HUB_SERVER = "https://index.docker.io/v1/"  # docker's key for Docker Hub
HELPER_TIMEOUT = 30.0
_MASK = "********"


class CredentialError(RegistryError):
    """Credentials are missing, unreadable, or refused; never carries the secret itself."""


class Secret:
    """A string that does not print."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({_MASK!r})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(
            self._value.encode(), other._value.encode()
        )

    def __hash__(self) -> int:
        return hash(("Secret", len(self._value)))

    def __reduce__(self) -> Any:
        raise TypeError("a Secret is not serialisable")


@dataclass(frozen=True, slots=True)
class Credential:
    """What to log in with; `source` says where it came from, for messages."""

    username: str = ""
    password: Secret | None = None
    identity_token: Secret | None = None  # an OAuth2 refresh token (docker `identitytoken`)
    source: str = ""

    def basic_auth(self) -> str | None:
        """The `Authorization: Basic` value (RFC 7617), or None without a password."""
        if self.password is None:
            return None
        raw = f"{self.username}:{self.password.reveal()}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


class CredentialSource(Protocol):
    """Where credentials come from. A source whose `on_demand` attribute is true (a Google
    service account) is asked only once a registry refused anonymous access or for writes."""

    @property
    def description(self) -> str: ...

    async def get(self, host: str) -> Credential | None: ...


def refused(
    host: str, what: str, used: Credential | None, store: CredentialStore | None
) -> CredentialError:
    """A 401 that no credential can fix any more: names the source of the credentials that were
    sent and refused (never the secret), or where credentials were looked for."""
    if used is not None:
        message = f"{what}: {host} refused the credentials from {used.source}"
    else:
        where = store.describe() if store is not None else "no sources"
        message = f"{what}: {host} requires credentials and none were found (looked in: {where})"
    return CredentialError(message, registry=host, status=401)


def canonical_host(name: str) -> str:
    """`https://host:port/v1/` -> `host:port` (docker's ConvertToHostname); hub aliases folded."""
    name = re.sub(r"^[a-z]+://", "", name.strip().lower()).split("/", 1)[0]
    return "docker.io" if name in DOCKER_HUB_NAMES else name


def env_variable(host: str) -> str:
    return "CIP_AUTH_" + re.sub(r"[^A-Z0-9]", "_", canonical_host(host).upper())


@dataclass(frozen=True, slots=True)
class EnvCredentials:
    """`CIP_AUTH_<HOST>=username:password` (see the module docstring)."""

    env: Mapping[str, str]
    description: str = "environment (CIP_AUTH_<HOST>)"

    async def get(self, host: str) -> Credential | None:
        name = env_variable(host)
        value = self.env.get(name)
        if not value:
            return None
        username, sep, password = value.partition(":")
        if not sep:
            raise CredentialError(f"{name} must be username:password", registry=host)
        return Credential(username, Secret(password), source=f"environment variable {name}")


class AuthFile:
    """A docker `config.json` or containers `auth.json`; read once, on first use.

    `origin` says how the file was chosen (`--authfile`, `REGISTRY_AUTH_FILE`, `DOCKER_CONFIG`,
    ...), for messages."""

    def __init__(self, path: Path, origin: str) -> None:
        self.path = path
        self.description = f"{origin} {path}"
        self._data: dict[str, Any] | None = None

    def _load(self, host: str) -> dict[str, Any]:
        if self._data is None:
            try:
                data = json.loads(self.path.read_text())
            except FileNotFoundError:
                data = {}
            except json.JSONDecodeError as exc:
                # Position and parser message only: the content holds secrets.
                raise CredentialError(
                    f"{self.path}:{exc.lineno}:{exc.colno}: invalid JSON ({exc.msg}) in "
                    f"{self.description}",
                    registry=host,
                ) from None
            except (OSError, ValueError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else type(exc).__name__
                raise CredentialError(
                    f"cannot read {self.description}: {reason}", registry=host
                ) from None
            self._data = data if isinstance(data, dict) else {}
        return self._data

    async def get(self, host: str) -> Credential | None:
        data = self._load(host)
        want = canonical_host(host)
        helpers = data.get("credHelpers") or {}
        for key, helper in helpers.items():
            if canonical_host(key) == want and helper:
                return await run_helper(str(helper), _server_name(want), self.description)
        for key, entry in (data.get("auths") or {}).items():
            if canonical_host(key) == want and isinstance(entry, dict):
                found = self._entry(entry, host)
                if found is not None:
                    return found
        store = data.get("credsStore")
        if store:
            return await run_helper(str(store), _server_name(want), self.description)
        return None

    def _entry(self, entry: Mapping[str, Any], host: str) -> Credential | None:
        source = f"{self.description} (auths)"
        token = entry.get("identitytoken")
        if entry.get("auth"):
            try:
                decoded = base64.b64decode(str(entry["auth"]), validate=False).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise CredentialError(f"{source}: unreadable auth entry", registry=host) from None
            username, sep, password = decoded.partition(":")
            if not sep:
                raise CredentialError(f"{source}: auth entry is not user:password", registry=host)
        else:
            username, password = str(entry.get("username") or ""), str(entry.get("password") or "")
        if not password and not token:
            return None
        return Credential(
            username,
            Secret(password) if password else None,
            Secret(str(token)) if token else None,
            source=source,
        )


def _server_name(host: str) -> str:
    # docker stores and asks helpers for Docker Hub under its v1 index URL.
    return DOCKER_HUB_SERVER if host == "docker.io" else host


async def run_helper(name: str, server: str, named_in: str) -> Credential | None:
    """`docker-credential-NAME get` (docker-credential-helpers protocol); None if it has none."""
    program = f"docker-credential-{name}"
    try:
        process = await asyncio.create_subprocess_exec(
            program,
            "get",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except (FileNotFoundError, PermissionError):
        raise CredentialError(
            f"credential helper {program} (named in {named_in}) is not installed or not executable",
            registry=server,
        ) from None
    try:
        out, err = await asyncio.wait_for(process.communicate(server.encode()), HELPER_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise CredentialError(
            f"credential helper {program} did not answer in {HELPER_TIMEOUT:.0f} s",
            registry=server,
            retryable=True,
        ) from None
    if process.returncode != 0:
        # The protocol's "not found" answer; anything else is a failure worth reporting.
        if b"credentials not found" in (out + err).lower():
            return None
        first = err.decode(errors="replace").strip().splitlines()[:1]
        raise CredentialError(
            f"credential helper {program} failed (exit {process.returncode})"
            + (f": {first[0][:200]}" if first else ""),
            registry=server,
        )
    try:
        answer = json.loads(out)
        username, secret = str(answer.get("Username") or ""), str(answer["Secret"])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise CredentialError(
            f"credential helper {program} answered something that is not its JSON",
            registry=server,
        ) from None
    source = f"credential helper {program}"
    if username == "<token>":  # docker-credential-helpers: the secret is an identity token
        return Credential("", None, Secret(secret), source=source)
    return Credential(username, Secret(secret), source=source)


class CredentialStore:
    """Asks its sources in order; remembers answers per host until `refresh`."""

    def __init__(self, sources: Sequence[CredentialSource]) -> None:
        self.sources = tuple(sources)
        self._cache: dict[tuple[str, bool], Credential | None] = {}
        self._locks: dict[tuple[str, bool], asyncio.Lock] = {}

    def __repr__(self) -> str:
        return f"CredentialStore({[s.description for s in self.sources]!r})"

    def describe(self) -> str:
        return ", ".join(s.description for s in self.sources) or "no credential sources"

    async def get(self, host: str, *, demanded: bool = True) -> Credential | None:
        """`demanded=False` leaves out on-demand sources (anonymous access not yet refused)."""
        key = (canonical_host(host), demanded)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if key not in self._cache:
                self._cache[key] = await self._ask(host, demanded)
            return self._cache[key]

    async def refresh(self, host: str, *, demanded: bool = True) -> Credential | None:
        """Ask again: a helper's answer (a short-lived token) may have expired."""
        for key in [k for k in self._cache if k[0] == canonical_host(host)]:
            del self._cache[key]
        return await self.get(host, demanded=demanded)

    async def _ask(self, host: str, demanded: bool) -> Credential | None:
        for source in self.sources:
            if not demanded and getattr(source, "on_demand", False):
                continue
            found = await source.get(host)
            if found is not None:
                return found
        return None

    @classmethod
    def from_environment(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        home: Path | None = None,
        authfile: str | None = None,
    ) -> CredentialStore:
        """The default sources, in the order of the module docstring; `authfile` is
        `--authfile`, which replaces `$REGISTRY_AUTH_FILE` as it does for skopeo."""
        env = dict(os.environ if env is None else env)
        home = home or Path(env.get("HOME") or Path.home())
        sources: list[CredentialSource] = [EnvCredentials(env)]
        if authfile:
            sources.append(AuthFile(Path(authfile), "--authfile"))
        elif env.get("REGISTRY_AUTH_FILE"):
            sources.append(AuthFile(Path(env["REGISTRY_AUTH_FILE"]), "REGISTRY_AUTH_FILE"))
        elif env.get("XDG_RUNTIME_DIR"):
            path = Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json"
            sources.append(AuthFile(path, "XDG_RUNTIME_DIR"))
        if env.get("DOCKER_CONFIG"):
            sources.append(AuthFile(Path(env["DOCKER_CONFIG"]) / "config.json", "DOCKER_CONFIG"))
        else:
            sources.append(AuthFile(home / ".docker" / "config.json", "docker config"))
        return cls(sources)
