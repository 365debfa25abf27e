"""With bundles, the signature and the promotion attestation share the referrers index the plan
reads: it is written once for both, so a run whose attestation fails leaves no index behind,
and the next run signs and attests the digest again instead of taking it for done."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

from tests.e2e.conftest import push_images, run_cip
from tests.e2e.test_dry_run import manifest
from tests.e2e.test_keyless_bundles import referrer_manifests
from tests.e2e.test_promote import dmap
from tests.lab.fault_proxy import PASS, Fault, FaultProxy, ProxyRequest, status
from tests.lab.images import oci_image
from tests.lab.registry_lab import LabRegistry
from tests.lab.sigstore_lab import SigstoreLab, make_token

PROMOTION = "https://k8s.io/promo-tools/promotion/v1"
SIGN = "https://sigstore.dev/cosign/sign/v1"


def test_a_failed_attestation_leaves_no_referrers_index_and_the_next_run_does_both(
    registry_factory: Callable[..., LabRegistry], sigstore_lab: SigstoreLab, tmp_path: Path
) -> None:
    staging, mirror = registry_factory(), registry_factory()
    app = oci_image(901)
    push_images(staging, [("app", app, "1.0")])
    keyless = ("--identity-token", make_token(), "--sigstore-trust-config",
               str(sigstore_lab.trust_config), "--signature-format=bundle")  # fmt: skip
    index_tag = app.digest.replace(":", "-")

    def refuse_the_index(request: ProxyRequest) -> Fault:
        # The referrers tag is refused: the attest step's PUT of the index fails.
        if request.method == "PUT" and request.path.endswith(f"/manifests/{index_tag}"):
            return status(403)
        return PASS

    async def failing_run() -> tuple[int, str]:
        async with FaultProxy(mirror.host, refuse_the_index) as proxy:
            path = manifest(
                tmp_path / "proxy.yaml", staging.host, [proxy.host], dmap("app", app, "1.0")
            )
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "cip.cli", "run", "--manifest", str(path), "--confirm",
                *keyless, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await process.communicate()
            return process.returncode or 0, out.decode() + err.decode()

    code, output = asyncio.run(failing_run())
    assert code == 1, output
    assert "attestation failed" in output
    direct = manifest(tmp_path / "m.yaml", staging.host, [mirror.host], dmap("app", app, "1.0"))
    planned = run_cip("run", "--manifest", str(direct), *keyless)
    # No index: the signature made before the failure is not taken for done.
    assert "Signatures: sign 1" in planned.stdout and "Attestations: attest 1" in planned.stdout
    done = run_cip("run", "--manifest", str(direct), "--confirm", *keyless)
    assert done.returncode == 0, done.stdout + done.stderr
    kinds = [
        m["annotations"]["dev.sigstore.bundle.predicateType"]  # type: ignore[index]
        for m in referrer_manifests(mirror, "app", app.digest)
    ]
    assert kinds == [SIGN, PROMOTION]
