"""Names of registries, repositories, digests and tags, parsed once and never re-validated.

The grammar is the distribution reference grammar (distribution/reference, OCI distribution
spec "Pulling manifests"): repository paths are lowercase components joined by `/`, a registry
host is a domain or IP with an optional port. `oci:DIR` names a local folder of OCI image
layouts, one per image name, which is what a user without any server can promote between.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from cip.errors import quoted, shown

DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[_.]|__|-+)[a-z0-9]+)*"
PATH_RE = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9A-Fa-f:.]+\])"
HOST_RE = re.compile(rf"{_HOST}(?::[0-9]+)?")
MAX_NAME_LENGTH = 255  # distribution/reference: NameTotalLengthMax
OCI_PREFIX = "oci:"
SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def is_digest(value: str) -> bool:
    return DIGEST_RE.fullmatch(value) is not None


def is_tag(value: str) -> bool:
    # fullmatch, and ASCII only: `str.isascii` guards the `[A-Za-z0-9]` classes against
    # re.IGNORECASE-style surprises and non-ASCII digits.
    return value.isascii() and TAG_RE.fullmatch(value) is not None


# cosign's tags for what is attached to `repo@sha256:<hex>`: `sha256-<hex>.sig`, `.att`, `.sbom`,
# and the referrers tag `sha256-<hex>` (distribution-spec "Referrers Tag Schema").
ATTACHED_TAG_SUFFIXES = (".sig", ".att", ".sbom")
REFERRERS_TAG_RE = re.compile(r"sha256-[0-9a-f]{64}")


def is_attached_tag(tag: str) -> bool:
    """Whether a tag names attached content (signatures, attestations, SBOMs, referrers) rather
    than an image: such tags are merged by signing, never promoted or refused as tag moves."""
    return tag.endswith(ATTACHED_TAG_SUFFIXES) or REFERRERS_TAG_RE.fullmatch(tag) is not None


def is_repository_path(value: str) -> bool:
    return len(value) <= MAX_NAME_LENGTH and PATH_RE.fullmatch(value) is not None


def short_digest(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


def registry_name_problem(name: str) -> str | None:
    """Why `name` is not a well-formed `host[:port][/path]` or `oci:DIR`, or None."""
    if not name:
        return "registry name is empty"
    if name.startswith(OCI_PREFIX):
        return None if name[len(OCI_PREFIX) :] else "oci: registry names no directory"
    scheme = SCHEME_RE.match(name)
    if scheme is not None:
        # Registries are named as images are (`gcr.io/x`), never as URLs: the scheme is chosen
        # per host (TLS, or plain HTTP for loopback and --insecure-registry).
        rest = name[scheme.end() :]
        return (
            f"registry name {shown(name)} has a URL scheme: drop {shown(scheme.group())} "
            f"and write {shown(rest)}"
        )
    host, _, path = name.partition("/")
    if HOST_RE.fullmatch(host) is None:
        return f"invalid registry name: {shown(name)} (host {quoted(host)} is not a host[:port])"
    if ":" in host and not host.startswith("["):
        port = int(host.rsplit(":", 1)[1])
        if not 0 < port < 65536:
            return f"invalid registry name: {shown(name)} (port out of range)"
    if path and not is_repository_path(path):
        return (
            f"invalid registry name: {shown(name)} (path {quoted(path)} is not a repository path)"
        )
    if "/" in name and name.endswith("/"):
        return f"invalid registry name: {shown(name)} (trailing slash)"
    return None


@dataclass(frozen=True, slots=True)
class Registry:
    """A registry as a manifest names it: a network `host[:port]/path` or a local `oci:DIR`.

    `name` is kept as written (it is what reports and snapshots show); `oci_dir` is the
    absolute folder for `oci:` registries, resolved against the file that named it.
    """

    name: str
    host: str  # host[:port] for network registries, "" for oci:
    path: str  # path prefix below the host, "" when none
    oci_dir: str | None = None

    @classmethod
    def parse(cls, name: str, relative_to: str | None = None) -> Registry:
        problem = registry_name_problem(name)
        if problem is not None:
            raise ValueError(problem)
        if name.startswith(OCI_PREFIX):
            folder = name[len(OCI_PREFIX) :]
            base = os.path.dirname(relative_to) if relative_to else os.getcwd()
            return cls(name, "", "", os.path.normpath(os.path.join(base, folder)))
        host, _, path = name.partition("/")
        return cls(name, host, path)

    def repository(self, image: str) -> str:
        """The repository path below the host (or below the oci: folder) for an image."""
        return f"{self.path}/{image}" if self.path else image

    def __str__(self) -> str:
        return self.name
