"""One error root for everything cip refuses or fails at.

Every error carries diagnostics that name what it is about (file, line, image, digest,
registry), so the CLI can print them like a compiler does and a reviewer can jump to the
line in the pull request that introduced the problem.
"""

from __future__ import annotations

import errno
import re
import socket
from dataclasses import dataclass
from enum import IntEnum
from typing import Literal

Severity = Literal["error", "warning"]


def shown(value: str) -> str:
    """`value` as a message may show it: as is when it is printable ASCII, otherwise in double
    quotes with every other character escaped (`"v\\u200b1"`).

    Names, tags and digests are ASCII by grammar, so anything else in one is a mistake a reader
    must be able to see: a zero-width space is invisible and a Cyrillic `а` looks Latin.
    """
    if value.isascii() and value.isprintable():
        return value
    escaped = value.encode("unicode_escape").decode("ascii").replace('"', '\\"')
    return f'"{escaped}"'


def quoted(value: str) -> str:
    """`'value'` for a plain value, the escaped double-quoted form of `shown` otherwise."""
    plain = shown(value)
    return f"'{plain}'" if plain == value else plain


class ExitCode(IntEnum):
    """Exit codes of the `cip` command, documented in the README."""

    OK = 0
    FAILED = 1  # lost images, refused tag moves, failed edges or checks
    BAD_INPUT = 2  # invalid manifests, usage errors, missing git refs


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """A message tied to the place it is about; rendered `path:line:column: severity: msg`."""

    message: str
    severity: Severity = "error"
    file: str | None = None
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based
    image: str | None = None
    digest: str | None = None
    registry: str | None = None

    def render(self) -> str:
        where = ""
        if self.file is not None:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        context = [
            f"{key}={shown(value)}"
            for key, value in (
                ("registry", self.registry),
                ("image", self.image),
                ("digest", self.digest),
            )
            if value is not None and not _mentions(self.message, shown(value))
        ]
        suffix = f" ({', '.join(context)})" if context else ""
        return f"{where}{self.severity}: {self.message}{suffix}"

    def sort_key(self) -> tuple[str, int, int]:
        return (self.file or "", self.line or 0, self.column or 0)


def _mentions(message: str, value: str) -> bool:
    """Whether `value` appears in `message` as a whole name, not inside another word."""
    return re.search(rf"(?<![\w./:@-]){re.escape(value)}(?![\w./:@-])", message) is not None


class CipError(Exception):
    """Root of every error cip raises on purpose; the CLI catches it once."""

    exit_code: ExitCode = ExitCode.BAD_INPUT

    def __init__(self, message: str, diagnostics: tuple[Diagnostic, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.diagnostics = diagnostics

    def render(self) -> str:
        if not self.diagnostics:
            return f"error: {self.message}"
        lines = [d.render() for d in self.diagnostics]
        errors = sum(1 for d in self.diagnostics if d.severity == "error")
        if errors > 1 or self.message not in lines[0]:
            lines.append(f"{self.message}")
        return "\n".join(lines)


class UsageError(CipError):
    """Flags that contradict each other or name something that does not exist."""


class ManifestError(CipError):
    """One or more promoter manifests are invalid; all their problems are listed at once."""

    @classmethod
    def from_diagnostics(cls, diagnostics: list[Diagnostic]) -> ManifestError:
        ordered = tuple(sorted(diagnostics, key=Diagnostic.sort_key))
        errors = sum(1 for d in ordered if d.severity == "error")
        noun = "error" if errors == 1 else "errors"
        return cls(f"{errors} manifest {noun}; nothing was read from any registry", ordered)


class PlanError(CipError):
    """The plan cannot be made (e.g. a git ref for diff selection is missing)."""


class RegistryError(CipError):
    """A registry refused or failed a request; the executor isolates it to one edge."""

    exit_code = ExitCode.FAILED

    def __init__(
        self,
        message: str,
        *,
        registry: str | None = None,
        image: str | None = None,
        digest: str | None = None,
        status: int | None = None,
        oci_code: str | None = None,
        retryable: bool = False,
        unreachable: str | None = None,
    ) -> None:
        diagnostic = Diagnostic(message, registry=registry, image=image, digest=digest)
        super().__init__(message, (diagnostic,))
        self.registry = registry
        self.image = image
        self.digest = digest
        self.status = status
        self.oci_code = oci_code
        self.retryable = retryable
        self._unreachable = unreachable

    @property
    def unreachable(self) -> Unreachable | None:
        """The host that could not be connected to, and why; None when it answered.

        Taken from the OS error that caused this one (whatever HTTP library wrapped it), or
        from `unreachable=` where a layer fails without one (a circuit already open).
        """
        reason = self._unreachable or connection_failure(self)
        if reason is None or not self.registry:
            return None
        return Unreachable(self.registry.partition("/")[0], reason)


@dataclass(frozen=True, slots=True)
class Unreachable:
    """A registry host no connection could be made to: every edge needing it fails alike, so
    reports say it once per host instead of once per edge."""

    host: str  # host[:port]
    reason: str  # "connection refused", "name does not resolve", …


# errno values that mean "no connection could be made", not "the connection broke".
_CONNECT_ERRNOS = {
    errno.ECONNREFUSED: "connection refused",
    errno.EHOSTUNREACH: "no route to host",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "connection timed out",
}


def connection_failure(exc: BaseException) -> str | None:
    """Why no connection could be made, from the OS errors in `exc`'s chain (causes, contexts
    and the members of exception groups, as connection libraries raise them), or None."""
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, socket.gaierror):
            return "name does not resolve"
        if isinstance(current, OSError) and current.errno in _CONNECT_ERRNOS:
            return _CONNECT_ERRNOS[current.errno]
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return None


class DigestMismatchError(RegistryError):
    """Content did not hash to the digest it was fetched or pushed by: never stored."""


class SigningError(CipError):
    """A signature could not be made (an expired identity token, Fulcio or Rekor refusing):
    the images it was for fail, the run goes on."""

    exit_code = ExitCode.FAILED
