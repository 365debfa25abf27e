"""registry.k8s.io's manifests as the scale cases need them: read raw, served, rewritten.

The corpus is read here with PyYAML alone, not with cip's loader, so the content the simulator
serves (what "every destination already holds its digests" means) does not depend on the code
under test. Registry names in a temporary copy are then rewritten to the simulator's ports, one
port per original host, so cip keeps one client, one connection pool and one rate limit per
host exactly as it would against Google's 23 hosts.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.corpus_load import corrected_copy
from bench.sim_content import SimContent, SimHost

PR_TAG = "v99.0.0-bench"  # K2's new tag; no real tag looks like this
PR_DIGEST = "sha256:" + hashlib.sha256(b"cip bench K2: the image a pull request adds").hexdigest()
PR_SUBPROJECT = "k8s-staging-kueue"  # any subproject with 22 mirrors would do


@dataclass
class RawManifest:
    subproject: str
    source: str
    destinations: list[str]
    images: dict[str, dict[str, set[str]]]  # image -> digest -> tags


def _load(path: Path) -> object:
    with path.open(encoding="utf-8") as stream:
        return yaml.load(stream, Loader=yaml.CSafeLoader)


def read_corpus(folder: Path) -> list[RawManifest]:
    """Every thin manifest: registries and merged dmaps (null dmaps and empty files allowed)."""
    out = []
    for path in sorted(folder.glob("manifests/*/promoter-manifest.yaml")):
        subproject = path.parent.name
        body = _load(path)
        assert isinstance(body, dict), path
        registries = body["registries"]
        source = next(str(r["name"]) for r in registries if r.get("src"))
        destinations = [str(r["name"]) for r in registries if not r.get("src")]
        images: dict[str, dict[str, set[str]]] = {}
        entries = _load(folder / "images" / subproject / "images.yaml") or []
        assert isinstance(entries, list), subproject
        for entry in entries:
            dmap = images.setdefault(str(entry["name"]), {})
            for digest, tags in (entry.get("dmap") or {}).items():
                dmap.setdefault(str(digest), set()).update(str(t) for t in tags or [])
        out.append(RawManifest(subproject, source, destinations, images))
    return out


def repository(registry: str, image: str) -> tuple[str, str]:
    """(host, repository path below the host) of `image` in a registry named `host/path`."""
    host, _, path = registry.partition("/")
    return host, f"{path}/{image}" if path else image


def destination_repositories(manifests: Iterable[RawManifest]) -> set[tuple[str, str]]:
    """Repositories some edge promotes into (an image with an empty dmap has no edge)."""
    return {
        repository(registry, image)
        for m in manifests
        for registry in m.destinations
        for image, dmap in m.images.items()
        if dmap
    }


def signature_of(digest: str, suffix: str = "sig") -> tuple[str, str]:
    """(digest, tag) of a stand-in cosign signature (`sig`) or attestation (`att`) manifest of
    `digest`: the tag is the real `sha256-<hex>.<suffix>` form, which is all a plan reads."""
    body = f"{suffix} of {digest}".encode()
    return "sha256:" + hashlib.sha256(body).hexdigest(), digest.replace(":", "-") + "." + suffix


def sim_hosts(
    manifests: Iterable[RawManifest], *, google: bool, signed: bool = False
) -> list[SimHost]:
    """One simulated host per corpus host, holding every digest and tag the manifests name;
    with `signed`, every destination digest also carries its `.sig` and `.att` tags (a run
    with a signer attests what it promotes).

    Hosts holding the same repositories (the 22 regional mirrors) share one content set.
    """
    per_host: dict[str, dict[str, dict[str, set[str]]]] = {}
    for m in manifests:
        for registry in (m.source, *m.destinations):
            for image, dmap in m.images.items():
                host, repo = repository(registry, image)
                held = per_host.setdefault(host, {}).setdefault(repo, {})
                for digest, tags in dmap.items():
                    held.setdefault(digest, set()).update(tags)
                    if signed and registry != m.source:
                        for suffix in ("sig", "att"):
                            attached, tag = signature_of(digest, suffix)
                            held.setdefault(attached, set()).add(tag)
    built: list[tuple[dict[str, dict[str, set[str]]], SimContent]] = []
    hosts = []
    for host, repos in sorted(per_host.items()):
        content = next((c for held, c in built if held == repos), None)
        if content is None:
            content = SimContent()
            for repo, dmap in sorted(repos.items()):
                for digest, tags in sorted(dmap.items()):
                    content.add(repo, digest, sorted(tags))
            built.append((repos, content))
        hosts.append(SimHost(host, content, google))
    return hosts


def scratch_corpus(corpus: Path, into: Path, keep: Callable[[str], bool] | None = None) -> Path:
    """A corrected copy of the corpus, keeping only the subprojects `keep` accepts."""
    target = corrected_copy(corpus, into)
    if keep is not None:
        for kind in ("manifests", "images"):
            for folder in (target / kind).iterdir():
                if folder.is_dir() and not keep(folder.name):
                    shutil.rmtree(folder)
    return target


def point_at(
    corpus: Path, addresses: Mapping[str, str], keep_host: Callable[[str], bool] | None = None
) -> None:
    """Rewrite every registry name to the simulator; drop destinations whose host `keep_host`
    refuses (images.yaml files are untouched, so their line numbers stay)."""
    for path in sorted(corpus.glob("manifests/*/promoter-manifest.yaml")):
        body = _load(path)
        assert isinstance(body, dict), path
        kept = []
        for registry in body["registries"]:
            host, _, rest = str(registry["name"]).partition("/")
            if not registry.get("src") and keep_host is not None and not keep_host(host):
                continue
            registry["name"] = f"{addresses[host]}/{rest}" if rest else addresses[host]
            kept.append(registry)
        body["registries"] = kept
        path.write_text(yaml.safe_dump(body, sort_keys=False))


def pr_image(manifests: Iterable[RawManifest]) -> tuple[RawManifest, str]:
    """The manifest and image K2 adds a version to: the first image of PR_SUBPROJECT."""
    listed = [m for m in manifests if m.images]
    chosen = next((m for m in listed if m.subproject == PR_SUBPROJECT), listed[0])
    return chosen, sorted(chosen.images)[0]


def add_pr_version(corpus: Path, subproject: str, image: str) -> None:
    """Insert `PR_DIGEST: [PR_TAG]` as the first dmap line of `image`, as a pull request would."""
    path = corpus / "images" / subproject / "images.yaml"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.strip() == f"- name: {image}")
    dmap = next(i for i in range(start, len(lines)) if lines[i].strip() == "dmap:")
    following = lines[dmap + 1]
    indent = following[: len(following) - len(following.lstrip())]
    lines.insert(dmap + 1, f'{indent}"{PR_DIGEST}": ["{PR_TAG}"]\n')
    path.write_text("".join(lines), encoding="utf-8")


def git(folder: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", *args],
        cwd=folder,
        check=True,
        capture_output=True,
    )
