"""in-toto statements: reading any of them, writing cip's promotion record, judging SLSA ones.

A statement (in-toto attestation spec v1, statement.md) names its subjects by digest and carries
one predicate of a declared type. cosign still writes `_type` v0.1, so both are read.

The promotion record is upstream's (promo-tools `provenance/promotion.go`, a `PromotionRecord`
protobuf marshalled with protojson): predicate type `https://k8s.io/promo-tools/promotion/v1`,
fields `srcRef`, `dstRef`, `digest`, `timestamp` (RFC 3339, UTC), `builderId`. Upstream writes one
statement per edge, whose subject is that edge's destination; cip writes one per digest whose
subjects are every destination, and adds `dstRefs` (all of them) to the predicate, so a reader
of upstream's fields still finds the primary in `dstRef`.

SLSA provenance (`https://slsa.dev/provenance/v0.2` and `…/v1`) is judged here: its subject
must name the image, and the builder and source may be required to match a policy. Where the
source is written differs between versions and build types; every place a build names its
source is a candidate (see `source_uris`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cip import __version__

STATEMENT_V1 = "https://in-toto.io/Statement/v1"
STATEMENT_V01 = "https://in-toto.io/Statement/v0.1"
PROMOTION_PREDICATE_TYPE = "https://k8s.io/promo-tools/promotion/v1"
SLSA_V02 = "https://slsa.dev/provenance/v0.2"
SLSA_V1 = "https://slsa.dev/provenance/v1"
SLSA_PREDICATE_TYPES = (SLSA_V02, SLSA_V1)
# The builder id of promotion attestations: a package URL naming cip and its version (upstream
# writes https://k8s.io/promo-tools@<version>).
DEFAULT_BUILDER_ID = f"pkg:pypi/container-image-promoter@{__version__}"


@dataclass(frozen=True, slots=True)
class Statement:
    """The parts of an in-toto statement cip reads."""

    predicate_type: str
    subjects: tuple[tuple[str | None, str], ...]  # (name, "sha256:<hex>") per sha256 subject
    predicate: dict[str, Any] = field(default_factory=dict)

    def names(self, digest: str) -> bool:
        return any(found == digest for _, found in self.subjects)

    @property
    def digests(self) -> list[str]:
        return sorted({found for _, found in self.subjects})


def parse_statement(data: bytes) -> Statement:
    """ValueError naming what is wrong when `data` is no in-toto statement."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("the payload is not JSON") from None
    if not isinstance(document, dict):
        raise ValueError("the payload is not an in-toto statement")
    kind = document.get("_type")
    if kind not in (STATEMENT_V1, STATEMENT_V01):
        raise ValueError(f"the payload is not an in-toto statement (_type {kind!r})")
    predicate_type = document.get("predicateType")
    subjects = document.get("subject")
    if not isinstance(predicate_type, str) or not isinstance(subjects, list):
        raise ValueError("the statement lacks predicateType or subject")
    found: list[tuple[str | None, str]] = []
    for subject in subjects:
        digests = subject.get("digest") if isinstance(subject, dict) else None
        encoded = digests.get("sha256") if isinstance(digests, dict) else None
        if isinstance(encoded, str):
            name = subject.get("name")
            found.append((name if isinstance(name, str) else None, f"sha256:{encoded}"))
    predicate = document.get("predicate")
    return Statement(predicate_type, tuple(found), predicate if isinstance(predicate, dict) else {})


# -- the promotion record ----------------------------------------------------------------------


def rfc3339(moment: datetime) -> str:
    """protojson's Timestamp: UTC with a `Z`; whole seconds, as one timestamp per run needs."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class PromotionRecord:
    """One promotion of a digest: where from, where to (the primary first), when, by what."""

    src_ref: str  # registry/image@digest in the source
    dst_refs: tuple[str, ...]  # registry/image@digest per destination, the primary first
    digest: str
    timestamp: datetime
    builder_id: str

    def statement(self) -> bytes:
        """The in-toto statement, fields in protojson's order (field numbers), no spaces."""
        algorithm, _, encoded = self.digest.partition(":")
        predicate = {
            "srcRef": self.src_ref,
            "dstRef": self.dst_refs[0],
            "digest": self.digest,
            "timestamp": rfc3339(self.timestamp),
            "builderId": self.builder_id,
            "dstRefs": list(self.dst_refs),
        }
        body = {
            "_type": STATEMENT_V1,
            "subject": [{"name": ref, "digest": {algorithm: encoded}} for ref in self.dst_refs],
            "predicateType": PROMOTION_PREDICATE_TYPE,
            "predicate": predicate,
        }
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def promoted_to(statement: Statement) -> set[str]:
    """The destination references a promotion statement vouches for: `dstRefs`, else (as
    upstream writes it) `dstRef`, and every subject name."""
    found = {name for name, _ in statement.subjects if name}
    refs = statement.predicate.get("dstRefs")
    if isinstance(refs, list):
        found.update(ref for ref in refs if isinstance(ref, str))
    primary = statement.predicate.get("dstRef")
    if isinstance(primary, str):
        found.add(primary)
    return found


# -- SLSA provenance ---------------------------------------------------------------------------


def _get(value: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _uris(items: Any) -> Iterable[str]:
    for item in items if isinstance(items, list) else []:
        uri = item.get("uri") if isinstance(item, dict) else None
        if isinstance(uri, str):
            yield uri


def builder_id(statement: Statement) -> str | None:
    """v0.2: `builder.id`; v1: `runDetails.builder.id`."""
    path = (
        ("builder", "id")
        if statement.predicate_type == SLSA_V02
        else ("runDetails", "builder", "id")
    )
    found = _get(statement.predicate, *path)
    return found if isinstance(found, str) else None


def source_uris(statement: Statement) -> list[str]:
    """Where the build says its source came from.

    v0.2: `invocation.configSource.uri` and every `materials[].uri`. v1: every
    `buildDefinition.resolvedDependencies[].uri`, and the source its external parameters name
    (`source`, `source.uri`, or GitHub's `workflow.repository`), since v1 leaves the shape of
    parameters to each build type.
    """
    predicate = statement.predicate
    if statement.predicate_type == SLSA_V02:
        found = [_get(predicate, "invocation", "configSource", "uri")]
        found.extend(_uris(predicate.get("materials")))
    else:
        parameters = _get(predicate, "buildDefinition", "externalParameters")
        found = [
            _get(parameters, "source"),
            _get(parameters, "source", "uri"),
            _get(parameters, "workflow", "repository"),
        ]
        found.extend(_uris(_get(predicate, "buildDefinition", "resolvedDependencies")))
    return [uri for uri in dict.fromkeys(found) if isinstance(uri, str) and uri]


@dataclass(frozen=True, slots=True)
class ProvenancePolicy:
    """`--provenance-builder-id` and `--provenance-source-uri`: regular expressions matched as
    Go's `regexp.MatchString` (anywhere in the value, unless anchored), as cosign's flags are."""

    builder_id: re.Pattern[str] | None = None
    source_uri: re.Pattern[str] | None = None

    def problem(self, statement: Statement, digest: str) -> str | None:
        """Why this verified SLSA statement is no provenance of `digest` the policy accepts."""
        if not statement.names(digest):
            named = ", ".join(statement.digests) or "no sha256 digest"
            return f"the provenance is for {named}, not {digest}"
        if self.builder_id is not None:
            builder = builder_id(statement)
            if builder is None or self.builder_id.search(builder) is None:
                return (
                    f"the provenance's builder is {builder or 'not named'}, which does not match "
                    f"--provenance-builder-id {self.builder_id.pattern}"
                )
        if self.source_uri is not None:
            sources = source_uris(statement)
            if not any(self.source_uri.search(uri) for uri in sources):
                shown = ", ".join(sources) or "no source"
                return (
                    f"the provenance names {shown}, none matching --provenance-source-uri "
                    f"{self.source_uri.pattern}"
                )
        return None


def first_lines(reasons: Sequence[str], limit: int = 3) -> str:
    """Distinct reasons, in order, at most `limit` of them."""
    unique = list(dict.fromkeys(reasons))
    shown = "; ".join(unique[:limit])
    return shown + (f"; and {len(unique) - limit} more" if len(unique) > limit else "")
