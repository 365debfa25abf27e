"""Lab pieces for logging in: htpasswd files, a token server, certificates.

The registries are real (`docker-registry` 2.8.2 with `auth.htpasswd`, `auth.token` or
`http.tls`); what this module adds is what a real deployment puts around them: a
bcrypt htpasswd file (cost 4, paid on every request), a CA with a server certificate for
127.0.0.1, and a token server issuing RS256 JWTs the registry verifies against the CA-less
self-signed certificate in its `rootcertbundle` (the cert also travels in the `x5c` header).
"""

from __future__ import annotations

import base64
import datetime
import http.server
import ipaddress
import json
import secrets
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

SERVICE = "cip-lab-registry"
ISSUER = "cip-lab-token-issuer"


def htpasswd(path: Path, users: Mapping[str, str]) -> Path:
    """A bcrypt htpasswd file (`htpasswd -Bbn -C 4`, from apache2-utils)."""
    lines = [
        subprocess.run(
            ["htpasswd", "-Bbn", "-C", "4", user, password],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        for user, password in users.items()
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def basic_auth_config(htpasswd_path: Path) -> dict[str, Any]:
    return {"auth": {"htpasswd": {"realm": "cip-lab", "path": str(htpasswd_path)}}}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class KeyPair:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    def write(self, directory: Path, name: str) -> tuple[Path, Path]:
        cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
        cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
        return cert_path, key_path


def _certificate(
    subject: str,
    key: rsa.RSAPrivateKey,
    issuer: KeyPair | None,
    *,
    ca: bool,
    ip: str | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.cert.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ip is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
            critical=False,
        )
    signer = issuer.key if issuer else key
    return builder.sign(signer, hashes.SHA256())


def self_signed(subject: str, *, ca: bool = True) -> KeyPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return KeyPair(key, _certificate(subject, key, None, ca=ca))


def server_certificate(ca: KeyPair, ip: str = "127.0.0.1") -> KeyPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return KeyPair(key, _certificate(ip, key, ca, ca=False, ip=ip))


def tls_config(cert: Path, key: Path) -> dict[str, Any]:
    return {"http": {"tls": {"certificate": str(cert), "key": str(key)}}}


def sign_jwt(signer: KeyPair, claims: Mapping[str, Any]) -> str:
    """RS256 (RFC 7518 §3.3) with the signing certificate in `x5c` (RFC 7515 §4.1.6)."""
    der = signer.cert.public_bytes(serialization.Encoding.DER)
    header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
    signing_input = (
        _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
    )
    signature = signer.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return signing_input + "." + _b64url(signature)


@dataclass
class TokenRequest:
    method: str
    user: str | None  # None: anonymous
    scopes: tuple[str, ...]
    status: int


@dataclass
class TokenServer:
    """Issues tokens like a distribution token server (GET with Basic, POST refresh grant).

    `users` maps user -> password; `refresh_tokens` maps refresh token -> user; `grants`
    limits a user to some actions (default all asked); anonymous users get `pull` only when
    `anonymous_pull`. Every request is recorded (user and scopes, never the secret).
    """

    signer: KeyPair
    users: dict[str, str] = field(default_factory=dict)
    refresh_tokens: dict[str, str] = field(default_factory=dict)
    grants: dict[str, set[str]] = field(default_factory=dict)
    anonymous_pull: bool = False
    expires_in: int | None = 60
    requests: list[TokenRequest] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)
    port: int = 0

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def registry_config(self, bundle: Path) -> dict[str, Any]:
        return {
            "auth": {
                "token": {
                    "realm": self.realm,
                    "service": SERVICE,
                    "issuer": ISSUER,
                    "rootcertbundle": str(bundle),
                }
            }
        }

    def answer(self, method: str, query: str, headers: Mapping[str, str], body: bytes) -> Any:
        params = urllib.parse.parse_qs(query)
        user: str | None = None
        if method == "POST":
            form = urllib.parse.parse_qs(body.decode())
            params = {**params, **form}
            if form.get("grant_type") != ["refresh_token"]:
                return 400, {"error": "unsupported_grant_type"}
            user = self.refresh_tokens.get((form.get("refresh_token") or [""])[0])
            if user is None:
                return 401, {"error": "invalid_grant"}
            scopes = tuple(" ".join(params.get("scope", [])).split())
        else:
            scopes = tuple(params.get("scope", []))
            auth = headers.get("authorization", "")
            if auth.startswith("Basic "):
                name, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                if self.users.get(name) != password:
                    self.requests.append(TokenRequest(method, name, scopes, 401))
                    return 401, {"errors": [{"code": "UNAUTHORIZED"}]}
                user = name
            elif not self.anonymous_pull:
                self.requests.append(TokenRequest(method, None, scopes, 401))
                return 401, {"errors": [{"code": "UNAUTHORIZED"}]}
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            wanted = set(actions.split(","))
            allowed = self.grants.get(user, wanted) if user else {"pull"}
            access.append({"type": kind, "name": name, "actions": sorted(wanted & allowed)})
        now = int(time.time())
        lifetime = self.expires_in or 60
        claims = {
            "iss": ISSUER,
            "sub": user or "",
            "aud": SERVICE,
            "exp": now + lifetime,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        token = sign_jwt(self.signer, claims)
        self.issued.append(token)
        self.requests.append(TokenRequest(method, user, scopes, 200))
        answer: dict[str, Any] = {"token": token}
        if method == "POST":
            answer = {"access_token": token}
        if self.expires_in is not None:
            answer["expires_in"] = self.expires_in
        return 200, answer


def _handler(server: TokenServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            code, answer = server.answer(self.command, url.query, headers, body)
            data = json.dumps(answer).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: tests scan output for secrets, and query strings are noise

    return Handler


@contextmanager
def serve(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[int]:
    """A stdlib HTTP server on 127.0.0.1 (ephemeral port) in a thread; yields the port."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@contextmanager
def running_token_server(server: TokenServer) -> Iterator[TokenServer]:
    with serve(_handler(server)) as port:
        server.port = port
        yield server
