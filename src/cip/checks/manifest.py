"""`manifest`: the head manifests load and validate.

A manifest the pull request broke is a finding (exit 1: the pull request is wrong), not a
usage error; exit 2 stays for bad flags and git refs. Overlapping tags are the `overlap`
check's, so they are reported once, under their own id.
"""

from __future__ import annotations

from cip.checks.context import CheckContext
from cip.checks.findings import Check, Finding

ID = "manifest"


async def run(context: CheckContext) -> list[Finding]:
    return [Finding.from_diagnostic(ID, d) for d in context.change.loaded.diagnostics]


CHECK = Check(ID, "the head manifests load and validate (always runs)", run)
