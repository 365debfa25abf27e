"""Every validation rule, as a user sees it: the message and the line it points at."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cip.errors import ManifestError, shown
from cip.promote.pipeline import ValidatedManifests, load_and_validate
from tests.unit.conftest import D1, D2, REGISTRIES, write


def errors_of(plain: list[Path] = (), thin: list[Path] = ()) -> list[str]:  # type: ignore[assignment]
    with pytest.raises(ManifestError) as caught:
        load_and_validate([str(p) for p in plain], [str(t) for t in thin])
    return [d.render() for d in caught.value.diagnostics if d.severity == "error"]


def ok(plain: list[Path] = (), thin: list[Path] = ()) -> ValidatedManifests:  # type: ignore[assignment]
    return load_and_validate([str(p) for p in plain], [str(t) for t in thin])


def plain(tmp_path: Path, body: str) -> Path:
    return write(tmp_path / "m.yaml", body)


def test_valid_plain_manifest_loads(tmp_path: Path) -> None:
    path = plain(
        tmp_path,
        REGISTRIES
        + f"""
images:
- name: foo
  dmap:
    "{D1}": ["1.0", "latest"]
""",
    )
    result = ok([path])
    assert result.summary.edges == 4
    assert result.summary.destination_repositories == 2


def test_missing_source_registry(tmp_path: Path) -> None:
    path = plain(tmp_path, "registries:\n- name: gcr.io/a\nimages: []\n")
    [message] = errors_of([path])
    assert message == f"{path}:2:1: error: source registry must be set (one entry with src: true)"


def test_two_source_registries(tmp_path: Path) -> None:
    body = "registries:\n- name: gcr.io/a\n  src: true\n- name: gcr.io/b\n  src: true\nimages: []\n"
    [message] = errors_of([plain(tmp_path, body)])
    assert "cannot have more than 1 source registry: gcr.io/a, gcr.io/b" in message


def test_registries_missing(tmp_path: Path) -> None:
    [message] = errors_of([plain(tmp_path, "images: []\n")])
    assert message.endswith("error: manifest has no registries")


@pytest.mark.parametrize(
    "name",
    ["", "gcr.io/Upper", "gcr.io/a//b", "gcr.io:99999/a", "-bad.io/x", "gcr.io/a/", "oci:"],
)
def test_malformed_registry_names(tmp_path: Path, name: str) -> None:
    body = f'registries:\n- name: "{name}"\n  src: true\n- name: gcr.io/ok\nimages: []\n'
    [message] = errors_of([plain(tmp_path, body)])
    assert ":2:3: error: " in message
    assert "registry" in message or "oci" in message


@pytest.mark.parametrize("name", ["localhost:5000", "127.0.0.1:5000/a/b", "gcr.io", "oci:regs"])
def test_well_formed_registry_names(tmp_path: Path, name: str) -> None:
    body = f"registries:\n- name: {name}\n  src: true\n- name: gcr.io/ok\nimages: []\n"
    ok([plain(tmp_path, body)])


def test_oci_registry_is_relative_to_the_file(tmp_path: Path) -> None:
    body = "registries:\n- name: oci:regs/staging\n  src: true\n- name: gcr.io/ok\nimages: []\n"
    result = ok([write(tmp_path / "sub" / "m.yaml", body)])
    source = result.manifests[0].source.registry
    assert source.oci_dir == str(tmp_path / "sub" / "regs" / "staging")


def test_invalid_digest_names_line_and_image(tmp_path: Path) -> None:
    path = plain(
        tmp_path,
        REGISTRIES + 'images:\n- name: foo\n  dmap:\n    "sha256:abc": ["1.0"]\n',
    )
    [message] = errors_of([path])
    assert message == f"{path}:9:5: error: invalid digest: sha256:abc (image=foo)"


@pytest.mark.parametrize(
    "digest", ["sha256:" + "A" * 64, "sha512:" + "1" * 64, "sha256:" + "1" * 65, "1" * 64]
)
def test_digest_forms_refused(tmp_path: Path, digest: str) -> None:
    body = REGISTRIES + f'images:\n- name: foo\n  dmap:\n    "{digest}": ["1.0"]\n'
    [message] = errors_of([plain(tmp_path, body)])
    assert f"invalid digest: {digest}" in message


@pytest.mark.parametrize("tag", ["-lead", ".lead", "a" * 129, "ünï", "a b", "a:b"])
def test_invalid_tags(tmp_path: Path, tag: str) -> None:
    body = REGISTRIES + f'images:\n- name: foo\n  dmap:\n    "{D1}": ["{tag}"]\n'
    [message] = errors_of([plain(tmp_path, body)])
    assert f"error: invalid tag: {shown(tag)} " in message


@pytest.mark.parametrize("tag", ["_x", "a" * 128, "v1.0.0-rc.1_b", "9"])
def test_valid_tags(tmp_path: Path, tag: str) -> None:
    ok([plain(tmp_path, REGISTRIES + f'images:\n- name: foo\n  dmap:\n    "{D1}": ["{tag}"]\n')])


def test_unquoted_number_tag_says_to_quote(tmp_path: Path) -> None:
    body = REGISTRIES + f'images:\n- name: foo\n  dmap:\n    "{D1}": [1.10, true]\n'
    messages = errors_of([plain(tmp_path, body)])
    assert messages[0].endswith(
        'error: invalid tag: 1.10 is a number in YAML, not a string; quote it: "1.10" '
        f"(image=foo, digest={D1})"
    )
    assert "invalid tag: true is a boolean" in messages[1]


def test_duplicate_keys_and_unknown_fields(tmp_path: Path) -> None:
    body = (
        REGISTRIES
        + f"""images:
- name: foo
  name: bar
  tags: [x]
  dmap:
    "{D1}": ["a"]
    "{D1}": ["b"]
"""
    )
    messages = errors_of([plain(tmp_path, body)])
    assert any("duplicate key 'name' in an image (first at line 7)" in m for m in messages)
    assert any("unknown field 'tags' in an image (allowed: name, dmap)" in m for m in messages)
    assert any(f"duplicate key '{D1}'" in m for m in messages)


def test_unknown_top_level_and_registry_fields(tmp_path: Path) -> None:
    body = "registries:\n- name: gcr.io/a\n  src: true\n  region: x\n- name: gcr.io/b\nextra: 1\n"
    messages = errors_of([plain(tmp_path, body + "images: []\n")])
    assert any(":4:3: error: unknown field 'region' in a registry" in m for m in messages)
    assert any(":6:1: error: unknown field 'extra' in a manifest" in m for m in messages)


def test_service_account_is_kept(tmp_path: Path) -> None:
    body = (
        "registries:\n- name: gcr.io/a\n  src: true\n- name: gcr.io/b\n"
        "  service-account: sa@p.iam.gserviceaccount.com\nimages: []\n"
    )
    manifest = ok([plain(tmp_path, body)]).manifests[0]
    assert manifest.destinations[0].service_account == "sa@p.iam.gserviceaccount.com"


def test_invalid_image_name(tmp_path: Path) -> None:
    body = REGISTRIES + f'images:\n- name: Foo_\n  dmap:\n    "{D1}": ["a"]\n'
    [message] = errors_of([plain(tmp_path, body)])
    assert ":7:9: error: invalid image name: Foo_" in message


def test_all_errors_reported_at_once_across_files(tmp_path: Path) -> None:
    a = write(tmp_path / "a.yaml", REGISTRIES + 'images:\n- name: x\n  dmap:\n    "sha256:1": []\n')
    b = write(tmp_path / "b.yaml", "registries: []\nimages: []\n")
    messages = errors_of([a, b])
    assert len(messages) == 2
    assert messages[0].startswith(f"{a}:9:5")
    assert messages[1].startswith(f"{b}:1:13")


def test_yaml_syntax_error_points_at_the_line(tmp_path: Path) -> None:
    path = plain(tmp_path, "registries:\n- name: [unclosed\nimages: []\n")
    [message] = errors_of([path])
    assert message.startswith(f"{path}:")
    assert "invalid YAML" in message


def test_overlap_in_one_manifest_names_both_places(tmp_path: Path) -> None:
    body = REGISTRIES + f'images:\n- name: foo\n  dmap:\n    "{D1}": ["1.0"]\n    "{D2}": ["1.0"]\n'
    path = plain(tmp_path, body)
    [message] = errors_of([path])
    assert f"tag 1.0 of foo (every destination) would point at two digests: {D1} (at {path}:9:5)"
    assert message.startswith(f"{path}:10:5: error:")
    assert f"{D1} (at {path}:9:5) and {D2}" in message


def test_overlap_across_manifests_and_path_spellings(tmp_path: Path) -> None:
    a = write(
        tmp_path / "a.yaml",
        "registries:\n- name: gcr.io/s\n  src: true\n- name: gcr.io/prod\n"
        f'images:\n- name: sub/foo\n  dmap:\n    "{D1}": ["1.0"]\n',
    )
    b = write(
        tmp_path / "b.yaml",
        "registries:\n- name: gcr.io/t\n  src: true\n- name: gcr.io/prod/sub\n"
        f'images:\n- name: foo\n  dmap:\n    "{D2}": ["1.0"]\n',
    )
    [message] = errors_of([a, b])
    assert "tag 1.0 of gcr.io/prod/sub/foo would point at two digests" in message


def test_same_digest_and_tag_from_two_manifests_is_fine(tmp_path: Path) -> None:
    body = REGISTRIES + f'images:\n- name: foo\n  dmap:\n    "{D1}": ["1.0"]\n'
    ok([write(tmp_path / "a.yaml", body), write(tmp_path / "b.yaml", body)])


def test_no_overlap_between_different_destinations(tmp_path: Path) -> None:
    a = write(
        tmp_path / "a.yaml",
        "registries:\n- name: gcr.io/s\n  src: true\n- name: gcr.io/foo\n"
        f'images:\n- name: x\n  dmap:\n    "{D1}": ["1.0"]\n',
    )
    b = write(
        tmp_path / "b.yaml",
        "registries:\n- name: gcr.io/s\n  src: true\n- name: gcr.io/foobar\n"
        f'images:\n- name: x\n  dmap:\n    "{D2}": ["1.0"]\n',
    )
    assert ok([a, b]).summary.edges == 2


def test_images_path_in_plain_manifest_is_an_error(tmp_path: Path) -> None:
    body = REGISTRIES + "imagesPath: images.yaml\nimages: []\n"
    [message] = errors_of([plain(tmp_path, body)])
    assert "imagesPath belongs to thin manifests" in message


def test_thin_images_path_default_warns_other_is_error(thin: Callable[..., Path]) -> None:
    images = f'- name: foo\n  dmap:\n    "{D1}": ["1.0"]\n'
    root = thin("p", images, REGISTRIES + 'imagesPath: "../../images/p/images.yaml"\n')
    result = ok(thin=[root])
    [warning] = result.warnings
    assert "imagesPath is deprecated and names the default location" in warning.render()
    thin("p", images, REGISTRIES + 'imagesPath: "../../elsewhere.yaml"\n')
    [message] = errors_of(thin=[root])
    assert "only the default location is supported" in message
