"""`cip verify`'s results for people (every edge not in place, then totals) and as JSON data.

The text lists every gap, sorted by image, digest, registry and tag, one line each, so a
failing verification says exactly what to fix, then (with a verify policy) every destination
digest whose signature is missing, invalid or unreadable; the last lines count everything.
"""

from __future__ import annotations

from collections.abc import Iterator

from cip.plan.verification import GAP_ORDER, SIGNATURE_ORDER, Gap, SignatureCheck, Verification


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


def signatures_line(check: SignatureCheck) -> str:
    counts = check.counts()
    problems = ", ".join(f"{kind} {counts[kind]:,}" for kind in SIGNATURE_ORDER)
    return (
        f"Signatures: {check.checked:,} digests checked, {len(check.gaps):,} not verified "
        f"({problems})"
    )


def _signature_lines(check: SignatureCheck) -> Iterator[str]:
    for gap in check.gaps:
        child = f" (child of {gap.image}@{gap.parent})" if gap.parent else ""
        yield (
            f"  {gap.problem:<10} {gap.registry}/{gap.image}@{gap.digest}: {gap.detail}{child} "
            f"({gap.manifest})"
        )


def verification_text(verification: Verification) -> str:
    out: list[str] = []
    if verification.gaps:
        out.append(f"Not in place ({len(verification.gaps):,}):")
        out.extend(_gap_lines(verification))
        out.append("")
    check = verification.signatures
    if check is not None and check.gaps:
        out.append(f"Signatures not verified ({len(check.gaps):,}):")
        out.extend(_signature_lines(check))
        out.append("")
    out.append(totals_line(verification))
    if check is not None:
        out.append(signatures_line(check))
    return "\n".join(out)


def signatures_object(check: SignatureCheck | None) -> dict[str, object] | None:
    """`verification.signatures` of the JSON document: null without a verify policy."""
    if check is None:
        return None
    counts = check.counts()
    return {
        "checked": check.checked,
        "not_verified": {str(kind): counts[kind] for kind in SIGNATURE_ORDER},
        "gaps": [
            {
                "registry": gap.registry,
                "image": gap.image,
                "digest": gap.digest,
                "problem": str(gap.problem),
                "detail": gap.detail,
                "parent": gap.parent,
                "manifest": gap.manifest,
            }
            for gap in check.gaps
        ],
    }


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
        "signatures": signatures_object(verification.signatures),
        "shards": [],
        "missing_shards": [],
    }
