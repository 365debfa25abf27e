"""The phases of a run, as upstream names them: setup, plan, provenance, validate, promote,
sign, attest.

This module holds the offline part: loading and validating manifests and building edges. It
raises before any registry is read when a manifest is invalid, because such errors belong to
the pull request that introduced them, not to a half-done promotion.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from cip.errors import Diagnostic, ManifestError
from cip.manifests.load import load_all
from cip.model.manifest import PromoterManifest
from cip.plan.conflicts import find_overlaps
from cip.plan.edges import EdgeGroup, EdgeSummary, build_edges, summarize


class Phase(Enum):
    SETUP = "setup"
    PLAN = "plan"
    PROVENANCE = "provenance"
    VALIDATE = "validate"
    PROMOTE = "promote"
    SIGN = "sign"
    ATTEST = "attest"


@dataclass(frozen=True)
class ValidatedManifests:
    manifests: list[PromoterManifest]
    groups: list[EdgeGroup]
    summary: EdgeSummary
    warnings: list[Diagnostic]


def load_and_validate(plain_files: list[str], thin_dirs: list[str]) -> ValidatedManifests:
    """Every manifest loaded and checked; raises ManifestError listing every problem."""
    result = load_all(plain_files, thin_dirs)
    diagnostics = list(result.diagnostics)
    if not result.errors:
        diagnostics.extend(find_overlaps(result.manifests))
    if any(d.severity == "error" for d in diagnostics):
        raise ManifestError.from_diagnostics(diagnostics)
    groups = build_edges(result.manifests)
    return ValidatedManifests(
        manifests=result.manifests,
        groups=groups,
        summary=summarize(result.manifests, groups),
        warnings=sorted(result.warnings, key=Diagnostic.sort_key),
    )
