"""`--signer-account`: the identity token minted for a Google service account, as kpromo does.

Google cannot be reached offline, so a LOCAL TEST SERVER speaks the two REST shapes involved:
OAuth's token endpoint (the service-account key's `token_uri`, where google-auth trades a signed
assertion for an access token) and IAM Credentials' `generateIdToken` (CIP_IAM_CREDENTIALS_URL),
which answers with an identity token for the audience `sigstore`, issuer accounts.google.com.
"""

from __future__ import annotations

import http.server
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from cip.trust.identity import IdentityPolicy
from cip.trust.instance import load_instance
from cip.trust.keyless_verify import LegacyKeylessVerifier
from tests.e2e.conftest import push_images, run_cip
from tests.e2e.test_dry_run import manifest
from tests.e2e.test_keyless import keyless_layers
from tests.e2e.test_promote import dmap
from tests.lab.images import oci_image
from tests.lab.registry_lab import LabRegistry
from tests.lab.sigstore_lab import SigstoreLab, make_token

ACCOUNT = "promoter@k8s-artifacts-prod.iam.gserviceaccount.com"
GOOGLE = "https://accounts.google.com"
ACCESS_TOKEN = "ya29.local-test-access-token"


@dataclass
class GoogleStandIn:
    port: int = 0
    refuse: bool = False
    calls: list[tuple[str, str, dict[str, object]]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def google(tmp_path: Path) -> Iterator[tuple[GoogleStandIn, Path]]:
    stand_in = GoogleStandIn()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            auth = self.headers.get("Authorization", "")
            if self.path == "/token":
                answer: tuple[int, dict[str, object]] = (
                    200,
                    {"access_token": ACCESS_TOKEN, "expires_in": 3600, "token_type": "Bearer"},
                )
            elif self.path.endswith(":generateIdToken"):
                request = json.loads(body)
                stand_in.calls.append((self.path, auth, request))
                if stand_in.refuse or auth != f"Bearer {ACCESS_TOKEN}":
                    answer = (403, {"error": {"code": 403, "message": "Permission denied"}})
                else:
                    token = make_token(
                        subject=ACCOUNT, issuer=GOOGLE, email=ACCOUNT, aud=request["audience"]
                    )
                    answer = (200, {"token": token})
            else:
                answer = (404, {})
            data = json.dumps(answer[1]).encode()
            self.send_response(answer[0])
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stand_in.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    credentials = tmp_path / "ambient-service-account.json"
    credentials.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "k8s-infra-test",
                "private_key_id": "local-test-key",
                "private_key": pem,
                "client_email": "ci-runner@k8s-infra-test.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": f"{stand_in.url}/token",
            }
        )
    )
    try:
        yield stand_in, credentials
    finally:
        server.shutdown()
        server.server_close()


def test_signer_account_mints_a_sigstore_token_and_signs_as_that_account(
    registry_factory: Callable[..., LabRegistry],
    sigstore_lab: SigstoreLab,
    google: tuple[GoogleStandIn, Path],
    tmp_path: Path,
) -> None:
    stand_in, credentials = google
    staging, mirror = registry_factory(), registry_factory()
    app = oci_image(421)
    push_images(staging, [("stage/app", app, "src")])
    path = manifest(
        tmp_path / "m.yaml", f"{staging.host}/stage", [f"{mirror.host}/prod"], dmap("app", app, "1")
    )
    env = {
        **os.environ,
        "GOOGLE_APPLICATION_CREDENTIALS": str(credentials),
        "CIP_IAM_CREDENTIALS_URL": stand_in.url,
    }
    args = ("run", "--manifest", str(path), "--confirm", "--signer-account", ACCOUNT,
            "--sigstore-trust-config", str(sigstore_lab.trust_config))  # fmt: skip
    stand_in.refuse = True
    refused = run_cip(*args, env=env)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"--signer-account={ACCOUNT}: IAM Credentials answered 403" in refused.stdout
    assert "Traceback" not in refused.stderr

    stand_in.refuse = False
    done = run_cip(*args, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    path_called, _, request = stand_in.calls[-1]
    assert path_called == f"/v1/projects/-/serviceAccounts/{ACCOUNT}:generateIdToken"
    assert request == {"audience": "sigstore", "includeEmail": True}
    assert sigstore_lab.stats()["subjects"][-1] == ACCOUNT
    layers = keyless_layers(mirror, "prod/app", app.digest)
    assert layers is not None and len(layers) == 1
    verifier = LegacyKeylessVerifier(
        load_instance(str(sigstore_lab.trust_config)).material,
        IdentityPolicy(identity=ACCOUNT, issuer=GOOGLE),
    )
    assert verifier.problem(*layers[0]) is None
