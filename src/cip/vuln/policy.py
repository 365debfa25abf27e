"""The gate's policy: which findings hold an image back.

A finding counts when its severity is at or above the threshold, the source names a fix (unless
unfixed findings are included, as upstream's `FixableOnly` default excludes them), and no
unexpired allowlist entry names its id. The allowlist is Trivy's `.trivyignore.yaml` shape, so
teams keep one file for their scanner and for cip: `vulnerabilities: [{id, statement,
expired_at}]`; from `expired_at` on (midnight UTC, as Trivy compares) an entry stops counting.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Literal

import yaml

from cip.errors import Diagnostic, UsageError
from cip.manifests.yamlnodes import Diagnostics, compose, is_string, mapping_items, position
from cip.model.manifest import Position
from cip.vuln.model import Finding, Severity

OnMissing = Literal["fail", "warn"]
TIMESTAMP = "tag:yaml.org,2002:timestamp"
ENTRY_FIELDS = ("id", "statement", "expired_at")
# Trivy narrows an entry to file paths or package URLs; cip cannot match those the same way for
# every format, so such entries are refused rather than applied to every package.
NARROWING_FIELDS = ("paths", "purls")


@dataclass(frozen=True, slots=True)
class AllowEntry:
    id: str
    position: Position
    statement: str | None = None
    expires: dt.datetime | None = None  # UTC; the entry stops counting at this instant

    def expired(self, now: dt.datetime) -> bool:
        return self.expires is not None and now >= self.expires

    def describe(self) -> str:
        return f"{self.position.file}:{self.position.line}"


@dataclass(frozen=True, slots=True)
class Allowlist:
    path: str
    entries: tuple[AllowEntry, ...] = ()

    def entry_for(self, vulnerability: str, now: dt.datetime) -> AllowEntry | None:
        """The entry for an id: an unexpired one if there is one, else the (expired) first."""
        named = [e for e in self.entries if e.id == vulnerability]
        return next((e for e in named if not e.expired(now)), named[0] if named else None)


@dataclass(frozen=True)
class Policy:
    threshold: Severity
    include_unfixed: bool = False
    allowlist: Allowlist | None = None
    on_missing: OnMissing = "fail"
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @property
    def active(self) -> bool:
        return self.threshold > Severity.UNSPECIFIED


@dataclass
class Judgement:
    """What the policy makes of an image's findings; every list is worst first."""

    blocking: list[Finding] = field(default_factory=list)
    allowed: list[tuple[Finding, AllowEntry]] = field(default_factory=list)
    expired: list[tuple[Finding, AllowEntry]] = field(default_factory=list)  # counted again
    unfixed: list[Finding] = field(default_factory=list)  # at the threshold, no fix named
    below: int = 0  # findings under the threshold

    @property
    def worst(self) -> Finding | None:
        return self.blocking[0] if self.blocking else None


def merge(findings: Iterable[Finding]) -> list[Finding]:
    """One finding per (digest, id, package, installed version), its sources joined: the union
    of several sources of the same image, each named."""
    merged: dict[tuple[str, str, str, str | None], Finding] = {}
    for finding in findings:
        key = (finding.digest, finding.id, finding.package, finding.installed)
        seen = merged.get(key)
        if seen is None:
            merged[key] = finding
            continue
        sources = list(dict.fromkeys([*seen.source.split("; "), finding.source]))
        merged[key] = replace(
            seen,
            severity=max(seen.severity, finding.severity),
            fixable=seen.fixable or finding.fixable,
            fixed=seen.fixed or finding.fixed,
            source="; ".join(sources),
        )
    return sorted(merged.values(), key=Finding.sort_key)


def judge(findings: Iterable[Finding], policy: Policy) -> Judgement:
    result = Judgement()
    for finding in merge(findings):
        if finding.severity < policy.threshold or not policy.active:
            result.below += 1
            continue
        if not finding.fixable and not policy.include_unfixed:
            result.unfixed.append(finding)
            continue
        entry = policy.allowlist.entry_for(finding.id, policy.now) if policy.allowlist else None
        if entry is not None and not entry.expired(policy.now):
            result.allowed.append((finding, entry))
            continue
        if entry is not None:
            result.expired.append((finding, entry))
        result.blocking.append(finding)
    return result


def _expiry(path: str, node: yaml.Node, diags: Diagnostics) -> dt.datetime | None:
    text = str(node.value) if isinstance(node, yaml.ScalarNode) else ""
    try:
        if node.tag == TIMESTAMP or is_string(node):
            value = yaml.safe_load(text) if node.tag == TIMESTAMP else text
            if isinstance(value, dt.datetime):
                return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
            day = value if isinstance(value, dt.date) else dt.date.fromisoformat(text)
            return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    except ValueError:
        pass
    diags.error(position(path, node), f"expired_at {text!r} is not a date (YYYY-MM-DD)")
    return None


def _entry(path: str, node: yaml.Node, diags: Diagnostics) -> AllowEntry | None:
    where = position(path, node)
    if not isinstance(node, yaml.MappingNode):
        diags.error(where, "a vulnerabilities entry is a mapping with an id")
        return None
    values: dict[str, yaml.Node] = {}
    for key, key_node, value in mapping_items(path, node, diags, "an allowlist entry"):
        if key in NARROWING_FIELDS:
            diags.error(
                position(path, key_node),
                f"{key} narrows an entry to some packages, which cip does not apply; "
                "list the id alone (it then covers every package) or drop the entry",
            )
        elif key not in ENTRY_FIELDS:
            known = ", ".join(ENTRY_FIELDS)
            diags.error(position(path, key_node), f"unknown field {key!r} (known: {known})")
        else:
            values[key] = value
    identifier = values.get("id")
    if identifier is None or not is_string(identifier) or not str(identifier.value).strip():
        diags.error(where, "an allowlist entry needs an id (a vulnerability id such as CVE-…)")
        return None
    statement = values.get("statement")
    expires = _expiry(path, values["expired_at"], diags) if "expired_at" in values else None
    return AllowEntry(
        str(identifier.value).strip(),
        where,
        str(statement.value) if isinstance(statement, yaml.ScalarNode) else None,
        expires,
    )


def load_allowlist(path: str) -> Allowlist:
    """`--vuln-allowlist FILE`; every problem at once, with its line (exit 2)."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise UsageError(f"--vuln-allowlist={path}: cannot read it: {reason}") from None
    diags = Diagnostics()
    root = compose(path, text, diags)
    entries: list[AllowEntry] = []
    if root is not None and not isinstance(root, yaml.MappingNode):
        diags.file_error(path, "an allowlist is a mapping with a vulnerabilities list")
    elif root is not None:
        for key, _, value in mapping_items(path, root, diags, "the allowlist"):
            # Trivy's file also holds misconfigurations, secrets and licenses: not findings
            # of a vulnerability gate, so they are left to Trivy.
            if key != "vulnerabilities":
                continue
            if not isinstance(value, yaml.SequenceNode):
                diags.error(position(path, value), "vulnerabilities is a list of entries")
                continue
            entries += [e for item in value.value if (e := _entry(path, item, diags))]
    if diags.errors:
        raise UsageError(_count(diags.errors, path), tuple(diags.errors))
    return Allowlist(path, tuple(entries))


def _count(errors: list[Diagnostic], path: str) -> str:
    noun = "problem" if len(errors) == 1 else "problems"
    return f"--vuln-allowlist={path}: {len(errors)} {noun}; nothing was read from any registry"
