"""Assess one source image against the policy, once per digest, from every configured source.

An image manifest is one target; an index is judged through its platforms, each child a target
of its own (attestation manifests in an index are not platforms). For each target the sources
are asked concurrently: report files bound to its digest, a trivy scan of it, attestations on
it. A report or attestation about the index itself covers the child whose platform it names
(Trivy and Grype name it); its findings count in any case. A target no source covers is
*missing*. Assessments are data; `cip check` and `cip run` render them their own way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

from cip.errors import RegistryError
from cip.model.manifest import Position
from cip.model.refs import Registry as RegistryName
from cip.model.refs import short_digest
from cip.oci.media import Descriptor
from cip.registry.client import Registry
from cip.vuln.attestations import AttestationReader
from cip.vuln.formats import ParsedReport
from cip.vuln.model import Finding
from cip.vuln.policy import Judgement, Policy, judge
from cip.vuln.reports import ReportDirectory
from cip.vuln.scanner import ScanError, TrivyScanner

MAX_INDEX_DEPTH = 4
SHOWN_IDS = 10  # other vulnerability ids named in a held-back reason before "and N more"
ATTESTATION_REFERENCE = "vnd.docker.reference.type"  # buildkit's attestation entries in an index


@dataclass(frozen=True, slots=True)
class Target:
    """One image manifest to find vulnerabilities in: the image, or a platform of an index."""

    digest: str
    platform: Mapping[str, object] | None = None

    def describe(self) -> str:
        if not self.platform:
            return short_digest(self.digest)
        parts = [
            str(self.platform[k]) for k in ("os", "architecture", "variant") if self.platform.get(k)
        ]
        return f"{'/'.join(parts)} ({short_digest(self.digest)})"


@dataclass
class Assessment:
    """The gate's verdict on one image digest, with everything a report needs to say why."""

    digest: str
    policy: Policy
    targets: tuple[Target, ...] = ()
    judgement: Judgement = field(default_factory=Judgement)
    missing: tuple[Target, ...] = ()
    notes: tuple[str, ...] = ()
    error: str | None = None  # the image itself could not be read
    platforms: Mapping[str, str] = field(default_factory=dict)  # child digest -> "linux/arm64"

    @property
    def held_back(self) -> bool:
        unjudged = bool(self.missing) and self.policy.on_missing == "fail"
        return bool(self.judgement.blocking) or unjudged or self.error is not None

    @property
    def worst(self) -> Finding | None:
        return self.judgement.worst

    def platforms_of(self, finding: Finding) -> list[str]:
        """The platforms of an index, in its order, where the same vulnerability of the same
        package counts (just the finding's own platform when it does not); [] for an image."""
        digests = {
            f.digest
            for f in [finding, *self.judgement.blocking]
            if f.id == finding.id and f.package == finding.package
        }
        return [
            self.platforms[t.digest]
            for t in self.targets
            if t.digest in digests and t.digest in self.platforms
        ]

    def where(self, finding: Finding) -> str:
        """` on linux/amd64 (…), linux/arm64 (…)`, or nothing for an image."""
        found = self.platforms_of(finding)
        return f" on {', '.join(found)}" if found else ""

    def missing_text(self) -> str:
        if not self.missing:
            return ""
        if self.missing == self.targets and len(self.targets) == 1:
            return "no vulnerability report, scan or attestation is about it"
        names = ", ".join(t.describe() for t in self.missing)
        return f"no vulnerability report, scan or attestation is about {names}"

    def reason(self) -> str:
        """Why the image is held back, in one line: the worst finding first."""
        parts = [self.error] if self.error else []
        blocking = self.judgement.blocking
        if blocking:
            worst = blocking[0]
            scope = "" if self.policy.include_unfixed else " with a fix"
            noun = "finding" if len(blocking) == 1 else "findings"
            ids = list(dict.fromkeys(f.id for f in blocking[1:] if f.id != worst.id))
            others = f": also {', '.join(ids[:SHOWN_IDS])}" if ids else ""
            if len(ids) > SHOWN_IDS:
                others += f" and {len(ids) - SHOWN_IDS} more"
            parts.append(
                f"{worst.describe()}{self.where(worst)} ({worst.source}); {len(blocking)} "
                f"{noun}{scope} at or above {self.policy.threshold.name}{others}"
            )
        if self.missing and self.policy.on_missing == "fail":
            parts.append(f"{self.missing_text()} (--on-missing-report=fail)")
        return "; ".join(parts)

    def warnings(self) -> list[tuple[str, Position | None]]:
        """What a reader should know beyond the verdict: sources not used, platforms without a
        report (with --on-missing-report=warn), allowlist entries that expired."""
        found: list[tuple[str, Position | None]] = [(note, None) for note in self.notes]
        if self.missing and self.policy.on_missing == "warn":
            found.append((f"{self.missing_text()} (--on-missing-report=warn)", None))
        said: set[tuple[str, str, int]] = set()
        for finding, entry in self.judgement.expired:
            if (finding.id, finding.package, entry.position.line) in said:
                continue  # one word per entry and package, its platforms listed
            said.add((finding.id, finding.package, entry.position.line))
            day = entry.expires.date().isoformat() if entry.expires else "?"
            found.append(
                (
                    f"allowlist entry {entry.id} expired on {day}: {finding.id} in "
                    f"{finding.package}{self.where(finding)} counts again",
                    entry.position,
                )
            )
        return found


@dataclass
class Sources:
    reports: ReportDirectory | None = None
    scanner: TrivyScanner | None = None
    attestations: AttestationReader | None = None

    @property
    def any(self) -> bool:
        return any(s is not None for s in (self.reports, self.scanner, self.attestations))


def _is_platform(child: Descriptor) -> bool:
    return ATTESTATION_REFERENCE not in child.annotations


async def _targets(client: Registry, repository: str, digest: str) -> tuple[Target, ...]:
    async def walk(
        reference: str, platform: Mapping[str, object] | None, depth: int
    ) -> list[Target]:
        parsed = (await client.get_manifest(repository, reference)).parse()
        if not parsed.is_index or depth >= MAX_INDEX_DEPTH:
            return [Target(reference, platform)]
        children = [c for c in parsed.children if _is_platform(c)]
        found = await asyncio.gather(*(walk(c.digest, c.platform, depth + 1) for c in children))
        return [target for targets in found for target in targets]

    return tuple(await walk(digest, None, 0))


@dataclass
class _Collected:
    findings: list[Finding] = field(default_factory=list)
    covered: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)

    def add(
        self, report: ParsedReport, about: str, source: str, targets: tuple[Target, ...]
    ) -> None:
        """A report about digest `about`: the image, a platform, or the index (then it covers
        the platform it names, when it names one)."""
        covers = about
        if all(t.digest != about for t in targets):
            platform = report.platform
            match = [t for t in targets if platform and t.platform and platform.matches(t.platform)]
            covers = match[0].digest if len(match) == 1 else ""
        if covers:
            self.covered.add(covers)
        self.findings += report.bind(covers or about, source)


@dataclass
class VulnGate:
    policy: Policy
    sources: Sources
    _assessed: dict[tuple[str, str, str], asyncio.Future[Assessment]] = field(default_factory=dict)

    async def assess(
        self, registry: RegistryName, client: Registry, repository: str, digest: str
    ) -> Assessment:
        """The assessment of `repository@digest` in `registry`, made once per run."""
        key = (registry.name, repository, digest)
        task = self._assessed.get(key)
        if task is None:
            task = self._assessed[key] = asyncio.ensure_future(
                self._assess(registry, client, repository, digest)
            )
        return await task

    async def _assess(
        self, registry: RegistryName, client: Registry, repository: str, digest: str
    ) -> Assessment:
        try:
            targets = await _targets(client, repository, digest)
        except RegistryError as error:
            return Assessment(
                digest,
                self.policy,
                error=f"cannot read {registry.name}/{repository}: {error.message}",
            )
        except OSError as error:  # an oci: layout that cannot be read
            return Assessment(digest, self.policy, error=f"{error.filename}: {error.strerror}")
        collected = _Collected()
        about = [t.digest for t in targets] + ([digest] if targets[0].digest != digest else [])
        self._from_files(about, targets, collected)
        await asyncio.gather(
            *(self._scan(registry, repository, t, collected) for t in targets),
            *(self._attested(client, repository, d, targets, collected) for d in about),
        )
        platforms = {t.digest: t.describe() for t in targets if t.platform}
        return Assessment(
            digest,
            self.policy,
            targets,
            judge(collected.findings, self.policy),
            tuple(t for t in targets if t.digest not in collected.covered),
            tuple(dict.fromkeys(collected.notes)),
            platforms=platforms,
        )

    def _from_files(
        self, about: list[str], targets: tuple[Target, ...], collected: _Collected
    ) -> None:
        reports = self.sources.reports
        if reports is None:
            return
        for digest in about:
            for file in reports.about(digest):
                collected.add(file.report, digest, file.source(), targets)
            for file in reports.misnamed(digest):
                named = ", ".join(sorted(file.report.digests))
                collected.notes.append(
                    f"{file.path} is named for {short_digest(digest)} but its {file.report.format} "
                    f"is about {named}: not used for {digest}"
                )

    async def _scan(
        self, registry: RegistryName, repository: str, target: Target, collected: _Collected
    ) -> None:
        scanner = self.sources.scanner
        if scanner is None:
            return
        try:
            report = await scanner.scan(registry, repository, target.digest)
        except ScanError as error:
            collected.notes.append(f"scan of {target.describe()} failed: {error}")
            return
        if report.digests and target.digest not in report.digests:
            collected.notes.append(
                f"trivy's report of {target.digest} names {', '.join(sorted(report.digests))}: not used"
            )
            return
        source = f"trivy scan ({report.scanner or 'trivy'})"
        collected.add(report, target.digest, source, (target,))

    async def _attested(
        self,
        client: Registry,
        repository: str,
        digest: str,
        targets: tuple[Target, ...],
        collected: _Collected,
    ) -> None:
        reader = self.sources.attestations
        if reader is None:
            return
        found = await reader.read(client, repository, digest)
        collected.notes += found.notes
        for report, source in found.reports:
            collected.add(report, digest, source, targets)
