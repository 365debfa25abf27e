"""in-toto statements as values: the promotion record's bytes, and the SLSA provenance policy."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import pytest

from cip.trust.dsse import IN_TOTO_PAYLOAD_TYPE, envelope_bytes, pae, parse_envelope
from cip.trust.statements import (
    SLSA_V02,
    SLSA_V1,
    PromotionRecord,
    ProvenancePolicy,
    parse_statement,
    promoted_to,
)

D = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64


def test_the_promotion_record_has_upstreams_fields_in_protojson_order_and_every_destination() -> (
    None
):
    moment = datetime(2026, 5, 4, 3, 2, 1, 987654, tzinfo=timezone(timedelta(hours=2)))
    record = PromotionRecord(
        src_ref=f"staging.test/app@{D}",
        dst_refs=(f"prod.test/app@{D}", f"eu.test/app@{D}"),
        digest=D,
        timestamp=moment,
        builder_id="https://ci.test/cip@1",
    )
    body = json.loads(record.statement())
    assert list(body) == ["_type", "subject", "predicateType", "predicate"]
    assert body["subject"] == [
        {"name": f"prod.test/app@{D}", "digest": {"sha256": "a" * 64}},
        {"name": f"eu.test/app@{D}", "digest": {"sha256": "a" * 64}},
    ]
    assert body["predicate"] == {
        "srcRef": f"staging.test/app@{D}",
        "dstRef": f"prod.test/app@{D}",
        "digest": D,
        "timestamp": "2026-05-04T01:02:01Z",  # UTC, whole seconds
        "builderId": "https://ci.test/cip@1",
        "dstRefs": [f"prod.test/app@{D}", f"eu.test/app@{D}"],
    }
    assert promoted_to(parse_statement(record.statement())) == set(record.dst_refs)


def test_upstreams_one_edge_statements_name_their_destination_too() -> None:
    upstream = json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": f"registry.k8s.io/pause@{D}", "digest": {"sha256": "a" * 64}}],
            "predicateType": "https://k8s.io/promo-tools/promotion/v1",
            "predicate": {"dstRef": f"us.gcr.io/k8s-artifacts-prod/pause@{D}", "digest": D},
        }
    ).encode()
    assert promoted_to(parse_statement(upstream)) == {
        f"registry.k8s.io/pause@{D}",
        f"us.gcr.io/k8s-artifacts-prod/pause@{D}",
    }


def slsa(version: str, builder: str, source: str, digest: str = D) -> bytes:
    if version == SLSA_V02:
        predicate = {
            "builder": {"id": builder},
            "invocation": {"configSource": {"uri": source}},
            "materials": [{"uri": "git+https://git.test/other/dep"}],
        }
    else:
        predicate = {
            "buildDefinition": {
                "externalParameters": {"workflow": {"repository": source}},
                "resolvedDependencies": [{"uri": "git+https://git.test/other/dep"}],
            },
            "runDetails": {"builder": {"id": builder}},
        }
    return json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v0.1",
            "subject": [{"digest": {"sha256": digest.removeprefix("sha256:")}}],
            "predicateType": version,
            "predicate": predicate,
        }
    ).encode()


@pytest.mark.parametrize("version", [SLSA_V02, SLSA_V1])
def test_the_provenance_policy_reads_builder_and_source_where_each_version_writes_them(
    version: str,
) -> None:
    statement = parse_statement(
        slsa(version, "https://ci.test/builder@v1", "https://git.test/org/app")
    )
    assert ProvenancePolicy().problem(statement, D) is None
    strict = ProvenancePolicy(re.compile(r"^https://ci\.test/"), re.compile(r"git\.test/org/app$"))
    assert strict.problem(statement, D) is None
    other = ProvenancePolicy(re.compile("elsewhere"))
    assert "builder is https://ci.test/builder@v1" in (other.problem(statement, D) or "")
    source = ProvenancePolicy(source_uri=re.compile("org/tool"))
    assert "none matching --provenance-source-uri org/tool" in (source.problem(statement, D) or "")
    assert f"the provenance is for {D}, not {OTHER}" == ProvenancePolicy().problem(statement, OTHER)


def test_dsse_envelopes_as_cosign_writes_them_round_trip_over_the_encoding() -> None:
    assert pae("t", b"body") == b"DSSEv1 1 t 4 body"
    data = envelope_bytes(IN_TOTO_PAYLOAD_TYPE, b'{"x":1}', [b"\x01\x02"])
    assert json.loads(data)["signatures"] == [{"keyid": "", "sig": "AQI="}]
    parsed = parse_envelope(data)
    assert (parsed.payload_type, parsed.payload, parsed.signatures) == (
        IN_TOTO_PAYLOAD_TYPE, b'{"x":1}', (b"\x01\x02",),
    )  # fmt: skip
    with pytest.raises(ValueError, match="not an in-toto statement"):
        parse_statement(b'{"_type": "something"}')
