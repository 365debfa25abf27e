"""`cip run` with a signing key, staging → three mirrors on real registries."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from cip.plan.planner import Action, SigningPolicy
from cip.promote.pipeline import RunOutcome, load_and_validate, run_phases
from cip.promote.signing import SigningSetup
from cip.registry.connect import open_http_registry
from cip.registry.pool import RegistryPool
from cip.trust.attached import signature_tag
from cip.trust.keys import load_private_key
from cip.trust.signer import KeySigner, sign_layer
from cip.trust.signing import SignatureService
from cip.trust.store import AttachedWriter, Incoming
from tests.e2e.conftest import push_images, run_cip, writes
from tests.e2e.signatures import (
    all_digests,
    assert_signed_once_everywhere,
    delete_signature,
    signature_layers,
    signing_lab,
    verified_by,
)
from tests.e2e.test_dry_run import manifest
from tests.e2e.test_promote import dmap
from tests.lab.fault_proxy import PASS, Fault, FaultProxy, ProxyRequest, status
from tests.lab.images import oci_image
from tests.lab.registry_lab import LabRegistry
from tests.trust.keyfiles import KeyPair, openssl_keypair


def test_every_promoted_digest_signed_once_on_every_mirror_and_a_rerun_costs_nothing(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging, mirrors, catalog, path, keys = signing_lab(registry_factory, tmp_path)
    dry = run_cip("run", "--manifest", str(path), "--signing-key", str(keys.private))
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "Signatures: sign 3, replicate-signature 6 (planned)" in dry.stdout
    done = run_cip("run", "--manifest", str(path), "--confirm", "--signing-key", str(keys.private))
    assert done.returncode == 0, done.stdout + done.stderr
    # 3 images, an index of 2 and a list of 3: 8 digests, on 2 mirrors beside the primary.
    assert "phase sign: 8 signatures made, 16 replicated, 0 failed" in done.stderr
    assert_signed_once_everywhere(mirrors, catalog, keys, tmp_path / "v1")
    # The signed identity is the primary (first) destination's reference.
    layers = signature_layers(mirrors[2], "prod/app", catalog["app"].digest)
    assert layers is not None
    assert f'"docker-reference":"{mirrors[0].host}/prod/app"'.encode() in layers[0][0]

    plain_marks = {m.host: m.mark() for m in (staging, *mirrors)}
    plain = run_cip("run", "--manifest", str(path), "--confirm", "--sign=false")
    assert plain.returncode == 0, plain.stdout + plain.stderr
    labs = (staging, *mirrors)
    plain_counts = {m.host: len(m.requests_since(plain_marks[m.host])) for m in labs}
    marks = {m.host: m.mark() for m in (staging, *mirrors)}
    again = run_cip("run", "--manifest", str(path), "--confirm", "--signing-key", str(keys.private))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "phase sign: 0 signatures made, 0 replicated" in again.stderr
    for lab in (staging, *mirrors):
        assert writes(lab, marks[lab.host]) == []
    assert {m.host: len(m.requests_since(marks[m.host])) for m in labs} == plain_counts


def test_copy_only_run_then_signing_run_and_deleted_signatures_restored(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    _, mirrors, catalog, path, keys = signing_lab(registry_factory, tmp_path)
    copy_only = run_cip("run", "--manifest", str(path), "--confirm")
    assert copy_only.returncode == 0, copy_only.stdout + copy_only.stderr
    assert signature_layers(mirrors[0], "prod/app", catalog["app"].digest) is None
    signing = ("--signing-key", str(keys.private))
    dry = run_cip("run", "--manifest", str(path), *signing, "--output=json")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert '"sign": 3' in dry.stdout and '"replicate-signature": 6' in dry.stdout
    signed = run_cip("run", "--manifest", str(path), "--confirm", *signing)
    assert signed.returncode == 0, signed.stdout + signed.stderr
    assert_signed_once_everywhere(mirrors, catalog, keys, tmp_path / "v1")

    delete_signature(mirrors[0], "prod/multi", catalog["multi"].digest)  # the primary
    delete_signature(mirrors[2], "prod/app", catalog["app"].digest)  # a mirror
    plan = run_cip("run", "--manifest", str(path), *signing)
    assert "Signatures: sign 1, replicate-signature 1 (planned)" in plan.stdout
    repaired = run_cip("run", "--manifest", str(path), "--confirm", *signing)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert_signed_once_everywhere(mirrors, catalog, keys, tmp_path / "v2")


def test_two_concurrent_runs_and_a_rerun_leave_valid_signatures_and_lose_no_layer(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging, mirrors, catalog, path, keys = signing_lab(registry_factory, tmp_path)
    theirs = openssl_keypair(tmp_path / "theirs")
    app, listed = catalog["app"].digest, catalog["list"].digest
    # A signature staging holds for app: merged in as upstream copies it, on every mirror.
    run_cip_signing_elsewhere(staging, "stage/app", app, theirs, b"staging's signature")
    assert run_cip("run", "--manifest", str(path), "--confirm").returncode == 0  # copy only
    signing_run = [sys.executable, "-m", "cip.cli", "run", "--manifest", str(path),
                   "--confirm", "--signing-key", str(keys.private)]  # fmt: skip

    def race_then_rerun() -> None:
        runs = [
            subprocess.Popen(signing_run, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        for process in runs:
            out, err = process.communicate(timeout=300)
            # Distribution 2.8.2's filesystem driver writes link files in place, so a concurrent
            # writer of the same blob can see a half-written link (DIGEST_INVALID): such an
            # edge fails alone, and the rerun repairs it.
            assert process.returncode in (0, 1), out + err
            assert "Traceback" not in err
        rerun = run_cip(*signing_run[3:])
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr

    def assert_valid_everywhere(scratch: Path) -> None:
        for mirror in mirrors:
            for name, image in catalog.items():
                for digest in all_digests([image]):
                    layers = signature_layers(mirror, f"prod/{name}", digest)
                    assert layers is not None
                    assert verified_by(keys.public, layers, digest, scratch), (mirror, digest)
            app_layers = signature_layers(mirror, "prod/app", app) or []
            assert b"staging's signature" in [data for data, _ in app_layers]

    race_then_rerun()
    assert_valid_everywhere(tmp_path / "v1")
    # Someone appends to the primary's .sig of list, and the mirrors lose theirs: both runs
    # merge the primary's layers into the same mirror tags at once; none is dropped.
    run_cip_signing_elsewhere(mirrors[0], "prod/list", listed, theirs, b"appended layer")
    for mirror in mirrors[1:]:
        delete_signature(mirror, "prod/list", listed)
    race_then_rerun()
    assert_valid_everywhere(tmp_path / "v2")
    for mirror in mirrors:
        kept = signature_layers(mirror, "prod/list", listed) or []
        assert b"appended layer" in [data for data, _ in kept], mirror.host


def run_cip_signing_elsewhere(
    lab: LabRegistry, repository: str, digest: str, keys: KeyPair, data: bytes
) -> None:
    """A `.sig` layer written by another signer before cip runs."""

    async def write() -> None:
        signer = KeySigner(load_private_key(str(keys.private)))
        async with open_http_registry(lab.host) as client:
            layer = sign_layer(signer, data)
            await AttachedWriter().merge(
                client, repository, signature_tag(digest),
                [Incoming(layer.descriptor, layer.payload)],
            )  # fmt: skip

    asyncio.run(write())


def test_a_signing_failure_fails_the_image_keeps_the_copy_and_the_next_run_signs(
    registry_factory: Callable[..., LabRegistry], tmp_path: Path
) -> None:
    staging, mirror = registry_factory(), registry_factory()
    refused, fine = oci_image(311), oci_image(312)
    push_images(staging, [("refused", refused, "1"), ("fine", fine, "1")])
    keys = openssl_keypair(tmp_path / "keys")
    images = dmap("refused", refused, "1") + dmap("fine", fine, "1")

    def refuse_signature_of_refused(request: ProxyRequest) -> Fault:
        # The registry forbids the `.sig` tag of one image: a permanent, non-retryable refusal.
        if request.method == "PUT" and "/refused/manifests/sha256-" in request.path:
            return status(403)
        return PASS

    async def first_run() -> RunOutcome:
        async with FaultProxy(mirror.host, refuse_signature_of_refused) as proxy:
            path = manifest(tmp_path / "proxy.yaml", staging.host, [proxy.host], images)
            validated = load_and_validate([str(path)], [])
            setup = SigningSetup(
                SignatureService(KeySigner(load_private_key(str(keys.private)))), SigningPolicy()
            )
            async with RegistryPool() as pool:
                return await run_phases(validated.groups, pool, confirm=True, signing=setup)

    outcome = asyncio.run(first_run())
    by_image = {outcome.plan.groups[v.group].image: v for v in outcome.plan.verdicts}
    assert by_image["refused"].action is Action.FAILED
    assert "signing failed" in (by_image["refused"].error or "")
    assert by_image["fine"].action is Action.COPY
    assert outcome.plan.has_problems
    assert signature_layers(mirror, "refused", refused.digest) is None
    assert signature_layers(mirror, "fine", fine.digest) is not None
    direct = manifest(tmp_path / "m.yaml", staging.host, [mirror.host], images)
    plan = run_cip("run", "--manifest", str(direct), "--signing-key", str(keys.private))
    assert "refused  " in plan.stdout and "present 1, sign 1" in plan.stdout  # copy kept
    rerun = run_cip("run", "--manifest", str(direct), "--confirm", "--signing-key",
                    str(keys.private))  # fmt: skip
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    layers = signature_layers(mirror, "refused", refused.digest)
    assert layers is not None
    assert verified_by(keys.public, layers, refused.digest, tmp_path / "v")
