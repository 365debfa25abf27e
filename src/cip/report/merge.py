"""`cip verify --merge`: the JSON documents of a run's shards summarised as one.

Each shard of a sharded run (`cip run … --shard-index I --shard-count N --output=json`, or
`cip verify` likewise) writes its own document. Merged, they read as one run would: edges and
requests added up, images and gaps put together, warnings (every shard loads every manifest)
given once. The merge checks that the shards belong together (one shard count, no index twice)
and names every shard that is missing or not ok; that makes the merged run not ok (exit 1).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cip.errors import UsageError
from cip.plan.verification import GAP_ORDER, SIGNATURE_ORDER
from cip.report.rows import ORDER

EDGE_KEYS = tuple(str(action) for action in ORDER)  # the `edges` keys of every document


@dataclass
class ShardDocument:
    file: str
    body: dict[str, Any]

    @property
    def shard(self) -> tuple[int, int] | None:
        shard = self.body.get("shard")
        return (int(shard["index"]), int(shard["count"])) if isinstance(shard, dict) else None


@dataclass
class Merged:
    documents: list[ShardDocument]
    count: int | None = None  # the shard count, when the documents are shards
    missing: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and all(d.body.get("ok") is True for d in self.documents)


def read_documents(paths: Sequence[str]) -> list[ShardDocument]:
    """Every file parsed and recognised as a cip document; a UsageError (exit 2) names the
    first file that is not one."""
    found = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as stream:
                body = json.load(stream)
        except ValueError as exc:
            raise UsageError(f"{path}: not a JSON document ({exc})") from exc
        if not (isinstance(body, dict) and body.get("command") in ("run", "verify")):
            raise UsageError(f"{path}: not a document written by cip run or cip verify")
        if not isinstance(body.get("schema_version"), int):
            raise UsageError(f"{path}: no schema_version")
        found.append(ShardDocument(path, body))
    return found


def merge(documents: list[ShardDocument]) -> Merged:
    """Check that `documents` are the shards of one run (or unsharded documents) and pair
    them; raises UsageError when they cannot belong together."""
    if not documents:
        raise UsageError("--merge needs at least one document")
    sharded = [d for d in documents if d.shard is not None]
    if sharded and len(sharded) != len(documents):
        plain = next(d.file for d in documents if d.shard is None)
        raise UsageError(f"{plain} is not a shard's document, {sharded[0].file} is")
    if not sharded:
        return Merged(documents)
    counts = {d.file: d.shard[1] for d in sharded if d.shard is not None}
    if len(set(counts.values())) > 1:
        listed = ", ".join(f"{f} says {n}" for f, n in counts.items())
        raise UsageError(f"the documents disagree on the shard count: {listed}")
    count = next(iter(counts.values()))
    seen: dict[int, str] = {}
    for document in sharded:
        assert document.shard is not None
        index = document.shard[0]
        if index in seen:
            raise UsageError(f"shard {index} appears twice: {seen[index]} and {document.file}")
        seen[index] = document.file
    ordered = sorted(documents, key=lambda d: d.shard[0] if d.shard is not None else 0)
    return Merged(ordered, count, sorted(set(range(count)) - set(seen)))


def _add(total: dict[str, int], part: Mapping[str, Any] | None, keys: Iterable[str]) -> None:
    for key in keys:
        total[key] = total.get(key, 0) + int((part or {}).get(key, 0))


def _add_signatures(total: dict[str, Any] | None, part: object) -> dict[str, Any] | None:
    """A shard's `verification.signatures` added to the merged one (null stays null)."""
    if not isinstance(part, dict):
        return total
    if total is None:
        total = {"checked": 0, "not_verified": {}, "gaps": []}
    _add(total, part, ("checked",))
    _add(total["not_verified"], part.get("not_verified"), [str(k) for k in SIGNATURE_ORDER])
    total["gaps"].extend(part.get("gaps") or [])
    return total


def merged_values(merged: Merged) -> dict[str, Any]:
    """The merged document's values, keyed as the schema names them."""
    edges: dict[str, int] = {}
    not_in_place: dict[str, int] = {}
    verified = {"edges": 0, "in_place": 0}
    requests: dict[str, dict[str, int]] = {}
    images: list[Any] = []
    gaps: list[Any] = []
    errors: list[Any] = []
    warnings: dict[str, Any] = {}
    promotions: set[str] = set()
    signatures: dict[str, Any] | None = None  # null unless some shard checked signatures
    for document in merged.documents:
        body = document.body
        _add(edges, body.get("edges"), EDGE_KEYS)
        check = body.get("verification") or {}
        _add(verified, check, ("edges", "in_place"))
        _add(not_in_place, check.get("not_in_place"), [str(k) for k in GAP_ORDER])
        gaps.extend(check.get("gaps") or [])
        signatures = _add_signatures(signatures, check.get("signatures"))
        for host, table in (body.get("requests") or {}).items():
            _add(requests.setdefault(host, {}), table, table)
        images.extend(body.get("images") or [])
        errors.extend(body.get("errors") or [])
        for warning in body.get("warnings") or []:
            warnings.setdefault(json.dumps(warning, sort_keys=True), warning)
        if body.get("promotion"):
            promotions.add(str(body["promotion"]))
    promotion = None  # as one run would say it: written something, and were all edges ok?
    if promotions:
        wrote = bool(promotions & {"promoted", "partially promoted"})
        all_ok = all(d.body.get("ok") is True for d in merged.documents)
        promotion = (
            "nothing promoted" if not wrote else "promoted" if all_ok else "partially promoted"
        )
    summaries = [d.body.get("summary") for d in merged.documents if d.body.get("summary")]
    shards = [
        {
            "file": d.file,
            "index": d.shard[0] if d.shard is not None else None,
            "count": d.shard[1] if d.shard is not None else None,
            "command": d.body.get("command"),
            "exit_code": d.body.get("exit_code"),
            "ok": d.body.get("ok") is True,
        }
        for d in merged.documents
    ]
    dry_runs = {d.body.get("dry_run") for d in merged.documents}
    return {
        "dry_run": dry_runs.pop() if len(dry_runs) == 1 else None,
        "promotion": promotion,
        "summary": summaries[0] if summaries else None,
        "edges": edges,
        "images": sorted(images, key=lambda i: (i.get("image", ""), i.get("digest", ""))),
        "errors": errors,
        "warnings": list(warnings.values()),
        "requests": requests,
        "verification": {
            **verified,
            "not_in_place": not_in_place,
            "gaps": gaps,
            "signatures": signatures,
            "shards": shards,
            "missing_shards": merged.missing,
        },
    }


def merged_text(merged: Merged) -> str:
    values = merged_values(merged)
    lines = []
    for shard in values["verification"]["shards"]:
        name = f"shard {shard['index']} of {shard['count']}" if merged.count else "document"
        state = "ok" if shard["ok"] else f"not ok (exit {shard['exit_code']})"
        lines.append(f"{name}: {shard['file']} ({shard['command']}): {state}")
    for index in merged.missing:
        lines.append(f"shard {index} of {merged.count}: no document")
    edges = values["edges"]
    lines.append("")
    lines.append("Edges: " + ", ".join(f"{k} {edges[k]:,}" for k in EDGE_KEYS))
    verification = values["verification"]
    if verification["edges"]:
        gaps = ", ".join(
            f"{k} {verification['not_in_place'][k]:,}" for k in verification["not_in_place"]
        )
        lines.append(
            f"Verified {verification['edges']:,} edges: {verification['in_place']:,} in place"
            f" ({gaps})"
        )
    signatures = verification["signatures"]
    if signatures is not None:
        problems = ", ".join(f"{k} {n:,}" for k, n in signatures["not_verified"].items())
        lines.append(f"Signatures: {signatures['checked']:,} digests checked ({problems})")
    requests = sum(sum(t.values()) for t in values["requests"].values())
    documents = len(merged.documents)
    of = f" of {merged.count} shards" if merged.count else " documents"
    state = "ok" if merged.ok else "NOT OK"
    lines.append(f"Merged {documents}{of}: {requests:,} registry requests; {state}")
    return "\n".join(lines)
