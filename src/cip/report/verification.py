"""`cip verify`'s results for people (every edge not in place, then totals) and as JSON data.

The text lists every gap, sorted by image, digest, registry and tag, one line each, so a
failing verification says exactly what to fix; the last line counts everything.
"""

from __future__ import annotations

from collections.abc import Iterator

from cip.plan.verification import GAP_ORDER, Gap, Verification


def _sorted(verification: Verification) -> list[Gap]:
    groups = verification.groups

    def key(gap: Gap) -> tuple[str, str, str, str]:
        group = groups[gap.group]
        return (group.image, group.digest, gap.destination.name, gap.tag or "")

    return sorted(verification.gaps, key=key)


def totals_line(verification: Verification) -> str:
    counts = verification.gap_counts()
    missing = ", ".join(f"{kind} {counts[kind]:,}" for kind in GAP_ORDER)
    return (
        f"Verified {verification.edges:,} edges: {verification.in_place:,} in place, "
        f"{len(verification.gaps):,} not in place ({missing})"
    )


def _gap_lines(verification: Verification) -> Iterator[str]:
    for gap in _sorted(verification):
        group = verification.groups[gap.group]
        where = f"{gap.destination.name}/{group.image}"
        ref = f"{where}:{gap.tag}" if gap.tag is not None else f"{where}@{group.digest}"
        if gap.current is not None:
            why = f"is {gap.current}, the manifest wants {group.digest}"
        elif gap.error is not None:
            why = f"{gap.error} (wants {group.digest})"
        else:
            why = f"wants {group.digest}"
        yield f"  {gap.kind:<13} {ref} {why} ({group.position})"


def verification_text(verification: Verification) -> str:
    out: list[str] = []
    if verification.gaps:
        out.append(f"Not in place ({len(verification.gaps):,}):")
        out.extend(_gap_lines(verification))
        out.append("")
    out.append(totals_line(verification))
    return "\n".join(out)


def verification_object(verification: Verification) -> dict[str, object]:
    """The `verification` value of the JSON document (see the schema)."""
    counts = verification.gap_counts()
    gaps: list[dict[str, object]] = []
    for gap in _sorted(verification):
        group = verification.groups[gap.group]
        gaps.append(
            {
                "image": group.image,
                "digest": group.digest,
                "registry": gap.destination.name,
                "tag": gap.tag,
                "gap": str(gap.kind),
                "current": gap.current,
                "error": gap.error,
                "manifest": str(group.position),
            }
        )
    return {
        "edges": verification.edges,
        "in_place": verification.in_place,
        "not_in_place": {str(kind): counts[kind] for kind in GAP_ORDER},
        "gaps": gaps,
        "shards": [],
        "missing_shards": [],
    }
