"""Cosign vulnerability attestations attached to an image, verified before they are believed.

cosign keeps attestations under the image's `sha256-<hex>.att` tag, one layer per DSSE
envelope (cosign PR #1503). An envelope counts when a signature verifies with the trusted key
(`--verify-key`) over its pre-authentication encoding, its in-toto statement has the vuln
predicate type, and a subject names this digest; the predicate's `scanner.result` is then read
as a report of any known format. Other predicate types (provenance, SBOMs) are not findings and
are passed over; a vuln attestation that fails a check is not used, and the assessment says why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from cip.errors import RegistryError
from cip.model.refs import short_digest
from cip.registry.client import Registry
from cip.trust.attached import attached_tag
from cip.trust.dsse import ENVELOPE_MEDIA_TYPE, parse_envelope
from cip.trust.keys import key_id
from cip.trust.store import read_attached, read_blob
from cip.vuln.formats import ParsedReport, ReportError, parse_document

VULN_PREDICATE = "https://cosign.sigstore.dev/attestation/vuln/v1"


@dataclass
class AttestationFindings:
    """The verified vuln attestations of one digest, and why others were not used."""

    reports: list[tuple[ParsedReport, str]] = field(default_factory=list)  # (report, source)
    notes: list[str] = field(default_factory=list)


def _subjects(statement: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for subject in statement.get("subject") or []:
        if isinstance(subject, dict) and isinstance(subject.get("digest"), dict):
            hex_digest = subject["digest"].get("sha256")
            if isinstance(hex_digest, str):
                found.add(f"sha256:{hex_digest}")
    return found


def _scanner(predicate: dict[str, Any]) -> str:
    scanner = predicate.get("scanner")
    if not isinstance(scanner, dict):
        return "a scanner"
    uri, version = scanner.get("uri"), scanner.get("version")
    named = uri if isinstance(uri, str) and uri else "a scanner"
    if isinstance(version, str) and version and version not in named:
        return f"{named} {version}"
    return named


@dataclass(frozen=True)
class AttestationReader:
    """Reads `.att` tags in the repository that holds the image (staging, for a promotion)."""

    key: ec.EllipticCurvePublicKey

    async def read(self, client: Registry, repository: str, digest: str) -> AttestationFindings:
        found = AttestationFindings()
        tag = attached_tag(digest, "att")
        where = f"{client.name}/{repository}:{tag}"
        try:
            manifest = await read_attached(client, repository, tag)
            if manifest is None:
                return found
            for layer in manifest.parse().layers:
                if layer.media_type != ENVELOPE_MEDIA_TYPE:
                    continue
                data = await read_blob(client, repository, layer.digest)
                self._envelope(data, digest, f"{where} layer {short_digest(layer.digest)}", found)
        except RegistryError as error:
            found.notes.append(f"attestations at {where} could not be read: {error.message}")
        return found

    def _envelope(self, data: bytes, digest: str, where: str, found: AttestationFindings) -> None:
        try:
            envelope = parse_envelope(data)
            statement = json.loads(envelope.payload)
        except (ValueError, UnicodeDecodeError) as error:
            found.notes.append(f"{where} is not a readable attestation ({error}): not used")
            return
        if not isinstance(statement, dict) or statement.get("predicateType") != VULN_PREDICATE:
            return  # provenance, SBOMs and other attestations are not findings
        if not envelope.signed_by(self.key):
            found.notes.append(
                f"the vulnerability attestation {where} is not signed by --verify-key "
                f"({key_id(self.key)[:19]}…): not used"
            )
            return
        subjects = _subjects(statement)
        if digest not in subjects:
            named = ", ".join(sorted(subjects)) or "no digest"
            found.notes.append(
                f"the vulnerability attestation {where} is about {named}, not {digest}: not used"
            )
            return
        predicate = statement.get("predicate")
        try:
            report = parse_document(predicate)
        except ReportError as error:
            found.notes.append(f"the vulnerability attestation {where}: {error}: not used")
            return
        scanner = _scanner(predicate) if isinstance(predicate, dict) else "a scanner"
        found.reports.append((report, f"attestation by {scanner}, signed ({where})"))
