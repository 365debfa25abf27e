"""Who a Fulcio certificate was issued to, and the identity policy a keyless signature must meet.

cosign names the policy `--certificate-identity[-regexp]` and `--certificate-oidc-issuer[-regexp]`:
the identity is matched against the certificate's subject alternative names (an email, a URI,
or Fulcio's username otherName), the issuer against Fulcio's issuer extension
(1.3.6.1.4.1.57264.1.8, a DER UTF8String; certificates from before it have 1.3.6.1.4.1.57264.1.1,
the raw string). Regular expressions match as Go's `regexp.MatchString` does: anywhere in the
value, unless anchored.

The same policy checks legacy `.sig` certificates (cip's verifier) and bundles (sigstore-python's
`Verifier` calls `verify(certificate)`, raising its `VerificationError`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
USERNAME_OTHERNAME = ObjectIdentifier("1.3.6.1.4.1.57264.1.7")
_UTF8_STRING = 0x0C


def _der_utf8(data: bytes) -> str | None:
    """The text of a DER UTF8String (tag, length, value), or None when it is not one."""
    if len(data) < 2 or data[0] != _UTF8_STRING:
        return None
    length, offset = data[1], 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or len(data) < 2 + count:
            return None
        length, offset = int.from_bytes(data[2 : 2 + count], "big"), 2 + count
    if len(data) != offset + length:
        return None
    try:
        return data[offset:].decode("utf-8")
    except UnicodeDecodeError:
        return None


def certificate_issuer(certificate: x509.Certificate) -> str | None:
    """The OIDC issuer Fulcio wrote into the certificate, or None when it has none."""
    extensions = certificate.extensions
    for oid, decode in ((ISSUER_V2, _der_utf8), (ISSUER_V1, _raw_text)):
        try:
            value = extensions.get_extension_for_oid(oid).value
        except x509.ExtensionNotFound:
            continue
        if isinstance(value, x509.UnrecognizedExtension):
            text = decode(value.value)
            if text is not None:
                return text
    return None


def _raw_text(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def certificate_identities(certificate: x509.Certificate) -> list[str]:
    """Every subject alternative name a policy may match: emails, URIs, Fulcio usernames."""
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    found: list[str] = [*names.get_values_for_type(x509.RFC822Name)]
    found.extend(names.get_values_for_type(x509.UniformResourceIdentifier))
    for other in names.get_values_for_type(x509.OtherName):
        if other.type_id == USERNAME_OTHERNAME:
            text = _der_utf8(other.value)
            if text is not None:
                found.append(text)
    return found


@dataclass(frozen=True, slots=True)
class IdentityPolicy:
    """cosign's identity policy: an exact identity or a regexp, an exact issuer or a regexp."""

    identity: str | None = None
    identity_regexp: str | None = None
    issuer: str | None = None
    issuer_regexp: str | None = None

    def __post_init__(self) -> None:
        for flag, value in (
            ("--certificate-identity-regexp", self.identity_regexp),
            ("--certificate-oidc-issuer-regexp", self.issuer_regexp),
        ):
            if value is not None:
                try:
                    re.compile(value)
                except re.error as error:
                    raise ValueError(
                        f"{flag}={value}: not a regular expression ({error})"
                    ) from None

    @property
    def description(self) -> str:
        """Names the policy in reports and keeps signers apart in merges."""
        who = self.identity if self.identity is not None else f"~{self.identity_regexp}"
        issuer = self.issuer if self.issuer is not None else f"~{self.issuer_regexp}"
        return f"{who} (issuer {issuer})"

    def problem(self, certificate: x509.Certificate) -> str | None:
        """Why the certificate does not meet the policy, or None when it does."""
        identities = certificate_identities(certificate)
        if self.identity is not None:
            matched = self.identity in identities
        else:
            pattern = re.compile(self.identity_regexp or "")
            matched = any(pattern.search(name) for name in identities)
        if not matched:
            shown = ", ".join(identities) or "no identity"
            return f"certificate is for {shown}, not {self.description.split(' (')[0]}"
        issuer = certificate_issuer(certificate)
        if issuer is None:
            return "certificate names no OIDC issuer"
        if self.issuer is not None:
            matched = issuer == self.issuer
        else:
            matched = re.search(self.issuer_regexp or "", issuer) is not None
        if not matched:
            wanted = self.issuer if self.issuer is not None else f"~{self.issuer_regexp}"
            return f"certificate was issued for issuer {issuer}, not {wanted}"
        return None

    def verify(self, cert: x509.Certificate) -> None:
        """sigstore-python's `VerificationPolicy` interface."""
        from sigstore.errors import VerificationError  # loaded only where bundles are verified

        problem = self.problem(cert)
        if problem is not None:
            raise VerificationError(problem)


def certificate_policy(certificate: x509.Certificate) -> IdentityPolicy:
    """The exact policy a certificate meets: its first identity and its issuer (how cip names
    the signer of a keyless signature)."""
    names = certificate_identities(certificate)
    return IdentityPolicy(
        identity=names[0] if names else "", issuer=certificate_issuer(certificate) or ""
    )
