"""Google's OIDC tokens for Pub/Sub pushes, made here: a certificate endpoint and a token minter.

The endpoint answers as https://www.googleapis.com/oauth2/v1/certs does (a JSON map of key id
to PEM certificate, with `Cache-Control: public, max-age=…`), on 127.0.0.1. Tokens are signed
with google-auth's own JWT encoder, with the claims a push subscription's token carries
(pubsub/docs/authenticate-push-subscriptions): `iss`, `aud`, `azp`, `sub`, `email`,
`email_verified`, `iat`, `exp`.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from google.auth import crypt, jwt

from tests.lab.auth_lab import KeyPair, self_signed

ISSUER = "https://accounts.google.com"
PUSHER = "cip-audit-push@lab-project.iam.gserviceaccount.com"


def _private_pem(pair: KeyPair) -> bytes:
    return pair.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


@dataclass
class GoogleCertificates:
    """Google's signing key (`kid`) and the endpoint publishing its certificate."""

    kid: str = "lab-key-1"
    max_age: int = 3600
    pair: KeyPair = field(default_factory=lambda: self_signed("google-oidc-lab", ca=False))
    requests: int = 0
    available: bool = True
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def document(self) -> bytes:
        cert = self.pair.cert.public_bytes(serialization.Encoding.PEM).decode()
        return json.dumps({self.kid: cert}).encode()

    def token(self, signed_by: KeyPair | None = None, **claims: Any) -> str:
        """A push token for `audience`; keyword claims override (None removes one)."""
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": ISSUER,
            "aud": "https://auditor.lab/pubsub",
            "azp": "117283463873267851111",
            "sub": "117283463873267851111",
            "email": PUSHER,
            "email_verified": True,
            "iat": now,
            "exp": now + 3600,
        }
        payload.update(claims)
        payload = {key: value for key, value in payload.items() if value is not None}
        signer = crypt.RSASigner.from_string(_private_pem(signed_by or self.pair), self.kid)
        return jwt.encode(signer, payload).decode()

    @contextmanager
    def serve(self) -> Iterator[str]:
        """The endpoint on 127.0.0.1; yields its URL. `available=False` answers 503."""
        lab = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with lab._lock:
                    lab.requests += 1
                if not lab.available:
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = lab.document()
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header(
                    "Cache-Control", f"public, max-age={lab.max_age}, must-revalidate, no-transform"
                )
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{httpd.server_address[1]}/oauth2/v1/certs"
        finally:
            httpd.shutdown()
            httpd.server_close()
            thread.join()
