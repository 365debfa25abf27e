"""`cip audit serve --pubsub-auth=oidc`: only Google-signed tokens of allowed accounts may push.

Tokens are signed by google-auth with a key whose certificate a local endpoint publishes in
Google's shape (tests/lab/google_oidc.py); the service verifies them with google-auth against
`--google-certs-url`. Every refusal is a 401 (503 when the certificates cannot be had),
counted by reason, logged in one line that never holds the token, and judges nothing.
"""

from __future__ import annotations

from pathlib import Path

from tests.cli import run_cip
from tests.e2e.auditor import RunningAuditor, running_auditor
from tests.lab.auth_lab import self_signed
from tests.lab.google_oidc import PUSHER, GoogleCertificates

AUDIENCE = "https://auditor.lab/pubsub"
PROMOTED = "sha256:" + "0" * 64
INSERT = {"action": "INSERT", "digest": f"prod.lab.example/foo/bar@{PROMOTED}"}


def manifest(folder: Path) -> Path:
    """A manifest whose promoted digest is verified without reading any registry."""
    path = folder / "foo.yaml"
    path.write_text(
        "registries:\n- name: staging.lab.example/foo\n  src: true\n- name: prod.lab.example/foo\n"
        f'images:\n- name: bar\n  dmap:\n    "{PROMOTED}": ["1.0"]\n'
    )
    return path


def oidc_flags(certs_url: str) -> list[str]:
    return [
        f"--google-certs-url={certs_url}",
        f"--pubsub-audience={AUDIENCE}",
        f"--pubsub-allowed-email={PUSHER}",
        "--pubsub-allowed-email=another-pusher@lab-project.iam.gserviceaccount.com",
    ]


def refused(auditor: RunningAuditor, reason: str) -> float:
    labels = (("reason", reason), ("route", "/pubsub"))
    return auditor.metrics()[("cip_audit_unauthorized_total", labels)]


def test_a_good_token_is_judged_and_every_bad_one_refused_counted_and_logged_without_it(
    tmp_path: Path,
) -> None:
    google = GoogleCertificates()
    forger = self_signed("not-google", ca=False)
    now_claims = google.token()  # a good token, checked last
    bad: list[tuple[str, dict[str, str], str, str]] = [
        ("no header", {}, "missing-token", "no bearer token"),
        ("basic", {"Authorization": "Basic dXNlcjpwYXNz"}, "missing-token", "no bearer token"),
        ("not a JWT", {"Authorization": "Bearer not-a-jwt"}, "malformed-token", "not a JWT"),
    ]
    tokens = [
        ("wrong audience", google.token(aud="https://elsewhere.lab/pubsub"), "wrong-audience",
         f"is for audience 'https://elsewhere.lab/pubsub', not '{AUDIENCE}'"),
        ("forged signature", google.token(signed_by=forger), "bad-signature",
         "signature does not match Google's certificates (key id 'lab-key-1')"),
        ("email not allowed", google.token(email="intruder@evil-project.iam.gserviceaccount.com"),
         "email-not-allowed", "intruder@evil-project.iam.gserviceaccount.com is not allowed"),
        ("email not verified", google.token(email_verified=False), "email-not-verified",
         f"{PUSHER} is not verified"),
        ("expired", google.token(iat=1_700_000_000, exp=1_700_003_600), "expired",
         "expired at 2023-11-14T23:13:20Z"),
        ("wrong issuer", google.token(iss="https://issuer.lab"), "wrong-issuer",
         "issuer 'https://issuer.lab' is not Google"),
    ]  # fmt: skip
    bad += [(name, {"Authorization": f"Bearer {t}"}, r, m) for name, t, r, m in tokens]
    with (
        google.serve() as certs_url,
        running_auditor(["--manifest", str(manifest(tmp_path)), *oidc_flags(certs_url)], tmp_path)
        as auditor,
    ):  # fmt: skip
        for index, (name, headers, reason, words) in enumerate(bad):
            before = refused(auditor, reason)
            status, answer = auditor.pubsub(INSERT, f"bad-{index}", headers)
            assert status == 401, name
            assert words in answer["error"], (name, answer)
            assert auditor.last_headers is not None
            assert auditor.last_headers["WWW-Authenticate"].startswith("Bearer"), name
            assert refused(auditor, reason) == before + 1, name
        # Nothing refused was judged: no decision line, no event counted.
        assert auditor.decision_lines() == []
        assert auditor.events_total("pubsub", "push", "verified") == 0
        status, answer = auditor.pubsub(INSERT, "good", {"Authorization": f"Bearer {now_claims}"})
        assert status == 200, answer
        assert (answer["events"][0]["verdict"], answer["events"][0]["rule"]) == ("verified", "promoted")  # fmt: skip
        assert auditor.events_total("pubsub", "push", "verified") == 1
        assert auditor.stop() == 0
    log = auditor.stderr.read_text()
    refusals = [line for line in log.splitlines() if "refused a Pub/Sub push" in line]
    assert len(refusals) == len(bad), log
    for _, token, _, _ in tokens:
        assert token not in log
        assert token.rsplit(".", 1)[1] not in log  # not even the signature
    # Google's certificates were fetched once and kept for their max-age.
    assert google.requests == 1


def test_certificates_that_cannot_be_fetched_answer_503_so_pubsub_retries(tmp_path: Path) -> None:
    google = GoogleCertificates(available=False)
    with (
        google.serve() as certs_url,
        running_auditor(["--manifest", str(manifest(tmp_path)), *oidc_flags(certs_url)], tmp_path)
        as auditor,
    ):  # fmt: skip
        token = google.token()
        status, answer = auditor.pubsub(INSERT, "m1", {"Authorization": f"Bearer {token}"})
        assert status == 503
        assert f"cannot fetch Google's certificates from {certs_url}" in answer["error"]
        assert refused(auditor, "certificates-unavailable") == 1
        # Once the endpoint answers, the same message is accepted (Pub/Sub redelivers it).
        google.available = True
        status, answer = auditor.pubsub(INSERT, "m1", {"Authorization": f"Bearer {token}"})
        assert status == 200, answer
        assert answer["events"][0]["verdict"] == "verified"


def test_certificates_past_their_max_age_are_kept_while_the_endpoint_is_down(
    tmp_path: Path,
) -> None:
    google = GoogleCertificates(max_age=0)  # every verification asks for them again
    with (
        google.serve() as certs_url,
        running_auditor(["--manifest", str(manifest(tmp_path)), *oidc_flags(certs_url)], tmp_path)
        as auditor,
    ):  # fmt: skip
        headers = {"Authorization": f"Bearer {google.token()}"}
        assert auditor.pubsub(INSERT, "m1", headers)[0] == 200
        google.available = False
        status, answer = auditor.pubsub(INSERT, "m2", headers)
        assert status == 200, answer
        assert google.requests == 2  # asked, refused, and the copy held was used
        assert refused(auditor, "certificates-unavailable") == 0
    assert "cannot refresh Google's certificates" in auditor.stderr.read_text()


def test_oidc_needs_an_audience_and_an_allowed_account_and_none_takes_neither(
    tmp_path: Path,
) -> None:
    path = str(manifest(tmp_path))
    cases = [
        ([], "--pubsub-audience is required with --pubsub-auth=oidc (the default)"),
        ([f"--pubsub-audience={AUDIENCE}"], "--pubsub-allowed-email is required"),
        (
            ["--pubsub-auth=none", f"--pubsub-audience={AUDIENCE}", f"--pubsub-allowed-email={PUSHER}",
             "--google-certs-url=http://127.0.0.1:1/certs"],
            "--pubsub-audience, --google-certs-url, --pubsub-allowed-email: only with --pubsub-auth=oidc",
        ),
    ]  # fmt: skip
    for flags, words in cases:
        done = run_cip("audit", "serve", "--manifest", path, *flags)
        assert done.returncode == 2, (flags, done.stderr)
        assert words in done.stderr, (flags, done.stderr)
        assert "Traceback" not in done.stderr
