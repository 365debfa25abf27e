"""Thin directory discovery, the defects real manifests carry, and the real Kubernetes corpus."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from cip.errors import ManifestError
from cip.plan.planner import Plan
from cip.promote.pipeline import load_and_validate
from cip.report.rows import display_names
from tests.unit.conftest import D1, D2, D3, REGISTRIES, write

IMAGES = f'- name: foo\n  dmap:\n    "{D1}": ["1.0"]\n'


def diagnostics(thin_dir: Path) -> list[str]:
    try:
        result = load_and_validate([], [str(thin_dir)])
    except ManifestError as error:
        return [d.render() for d in error.diagnostics]
    return [w.render() for w in result.warnings]


def test_other_files_ignored_and_orphans_warned(thin: Callable[..., Path]) -> None:
    root = thin("a", IMAGES)
    write(root / "manifests" / "OWNERS", "approvers: [x]\n")
    write(root / "images" / "a" / "README.md", "# readme\n")
    write(root / "docs" / "notes.yaml", "not: [a, manifest\n")
    write(root / "images" / "orphan" / "images.yaml", IMAGES)
    (root / "manifests" / "empty").mkdir()
    messages = diagnostics(root)
    assert messages == [
        f"{root}/images/orphan: warning: no manifests/orphan/promoter-manifest.yaml: "
        "images not promoted",
        f"{root}/manifests/empty: warning: skipped: no promoter-manifest.yaml",
    ]


def test_missing_images_file_is_an_error(thin: Callable[..., Path]) -> None:
    root = thin("a", IMAGES)
    write(root / "manifests" / "b" / "promoter-manifest.yaml", REGISTRIES)
    [message] = diagnostics(root)
    assert message == (
        f"{root}/manifests/b/promoter-manifest.yaml: error: images file is missing: "
        f"{root}/images/b/images.yaml"
    )


def test_nested_manifest_is_an_error(thin: Callable[..., Path]) -> None:
    root = thin("a", IMAGES)
    write(root / "manifests" / "a" / "c" / "promoter-manifest.yaml", REGISTRIES)
    [message] = diagnostics(root)
    assert "manifests/a/c/promoter-manifest.yaml: error: nested manifest" in message


def test_no_manifests_at_all(tmp_path: Path) -> None:
    (tmp_path / "manifests").mkdir()
    [message] = diagnostics(tmp_path)
    assert "error: no manifests found" in message
    assert diagnostics(tmp_path / "missing") == [
        f"{tmp_path}/missing: error: thin manifest directory not found"
    ]


def test_real_world_quirks_load(thin: Callable[..., Path]) -> None:
    images = (
        "# comment first\r\n"
        "- name: foo\r\n"
        "  dmap:\r\n"
        f'    "{D1}": ["1.0"]\r\n'
        "- name: bar\r\n"
        "  dmap:\r\n"
        "- name: foo\r\n"
        "  dmap:\r\n"
        f"    {D2}:\r\n"
        "    - '2.0'\r\n"
        "    - latest\r\n"
        f'    "{D1}": ["1.0-again"]\r\n'
        f"    {D3}: []\r\n"
    )
    root = thin("a", images)
    result = load_and_validate([], [str(root)])
    manifest = result.manifests[0]
    foo = next(i for i in manifest.images if i.name == "foo")
    assert foo.dmap == {D1: ("1.0", "1.0-again"), D2: ("2.0", "latest"), D3: ()}
    assert manifest.entries_written == 3
    assert [w.message for w in result.warnings] == [
        "image bar has a null dmap: no digests to promote"
    ]
    # 2 destinations x (2 tags of D1 + 2 of D2 + 1 tagless D3)
    assert result.summary.edges == 10
    assert result.summary.destination_repositories == 4


def test_comment_only_images_file_warns(thin: Callable[..., Path]) -> None:
    root = thin("a", "# nothing promoted yet\n")
    [message] = diagnostics(root)
    assert message.endswith("images.yaml: warning: no images (the file is empty or only comments)")


def test_flags_repeat_and_combine(thin: Callable[..., Path], tmp_path: Path) -> None:
    root = thin("a", IMAGES)
    other = tmp_path / "other"
    write(other / "manifests" / "b" / "promoter-manifest.yaml", REGISTRIES)
    write(other / "images" / "b" / "images.yaml", IMAGES.replace("foo", "baz"))
    plain = write(tmp_path / "p.yaml", REGISTRIES + IMAGES.replace("- name", "images:\n- name"))
    result = load_and_validate([str(plain)], [str(root), str(other)])
    assert result.summary.manifests == 3


def test_corpus_as_shipped_reports_exactly_its_bad_digest(corpus: Path) -> None:
    with pytest.raises(ManifestError) as caught:
        load_and_validate([], [str(corpus)])
    errors = [d for d in caught.value.diagnostics if d.severity == "error"]
    warnings = [d for d in caught.value.diagnostics if d.severity == "warning"]
    assert len(errors) == 1
    [error] = errors
    assert error.file == f"{corpus}/images/k8s-staging-ingress-nginx/images.yaml"
    assert error.line == 152
    assert error.image == "e2e-test-httpbin"
    assert error.message.startswith("invalid digest: sha256:23eb4b17")
    assert len(warnings) == 10


def corrected(corpus: Path, tmp_path: Path) -> Path:
    """A copy of the corpus with its one bad digest (a hex digit short) completed."""
    fixed = tmp_path / "corpus"
    shutil.copytree(corpus, fixed)
    bad = fixed / "images" / "k8s-staging-ingress-nginx" / "images.yaml"
    short = "sha256:23eb4b1775fbaa2adca55c73cf0341e1224d6308689b6f4b3aa1523312eb81c"
    bad.write_text(bad.read_text().replace(f'"{short}"', f'"{short}0"'))
    return fixed


def test_corpus_corrected_parses_to_the_known_numbers(corpus: Path, tmp_path: Path) -> None:
    summary = load_and_validate([], [str(corrected(corpus, tmp_path))]).summary
    assert (
        summary.manifests,
        summary.image_entries,
        summary.unique_digests,
        summary.tag_entries,
        summary.destination_registries,
        summary.destination_repositories,
        summary.edges,
    ) == (75, 822, 19_961, 20_086, 1_694, 9_834, 720_478)


def test_corpus_names_shared_by_subprojects_are_qualified_in_reports(
    corpus: Path, tmp_path: Path
) -> None:
    groups = load_and_validate([], [str(corrected(corpus, tmp_path))]).groups
    names = display_names(Plan(groups))
    # 33 names occur in more than one image entry; 14 of them only repeat within one file
    # (merged there), 19 are used by several subprojects.
    assert len({image for (_, image), shown in names.items() if shown != image}) == 19
    assert names[("k8s-staging-kubernetes", "conformance")] == "k8s-staging-kubernetes/conformance"
    assert names[("k8s-staging-experimental", "conformance")] == (
        "k8s-staging-experimental/conformance"
    )
    assert names[("k8s-staging-kubernetes", "kube-proxy")] == "kube-proxy"
