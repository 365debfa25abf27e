"""What a request needs to be authorised: the registry's `WWW-Authenticate` challenge parsed
(RFC 9110 §11.6.1) and the token scopes a Distribution request asks for (distribution "Token
Authentication Specification"). Pure: no I/O, so both are tested on values alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from yarl import URL

_REPO_PATH = re.compile(r"^/v2/(?P<name>.+?)/(?:manifests|blobs|tags|referrers)/")
_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^",\s]*))\s*,?')


@dataclass(frozen=True, slots=True)
class Challenge:
    scheme: str  # "basic" or "bearer", lower case
    params: Mapping[str, str]

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple(self.params.get("scope", "").split())


def parse_challenge(value: str | None) -> Challenge | None:
    """The first Basic or Bearer challenge of a `WWW-Authenticate` value (RFC 9110 §11.6.1)."""
    if not value:
        return None
    scheme, _, rest = value.strip().partition(" ")
    scheme = scheme.lower()
    if scheme not in ("basic", "bearer"):
        return None
    params: dict[str, str] = {}
    for match in _PARAM.finditer(rest):
        quoted = match.group(2)
        params[match.group(1).lower()] = (
            re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else match.group(3)
        )
    return Challenge(scheme, params)


def request_scopes(method: str, url: URL) -> tuple[str, ...]:
    """The token scopes a request needs, from its path and method (distribution token spec)."""
    path = url.path
    if path.startswith("/v2/_catalog"):
        return ("registry:catalog:*",)
    match = _REPO_PATH.match(path)
    if match is None:
        return ()
    # Distribution maps GET/HEAD to pull, DELETE to delete, other writes to pull,push.
    actions = (
        "pull" if method in ("GET", "HEAD") else "delete" if method == "DELETE" else "pull,push"
    )
    scopes = [f"repository:{match['name']}:{actions}"]
    source = url.query.get("from")
    if method == "POST" and source and url.query.get("mount"):
        scopes.append(f"repository:{source}:pull")  # a cross-repo mount reads the source
    return tuple(scopes)
