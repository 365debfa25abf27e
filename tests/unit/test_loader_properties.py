"""Arbitrary YAML into the loader: it may refuse, but only with CipError diagnostics."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cip.errors import ManifestError
from cip.promote.pipeline import load_and_validate

DIGEST = "sha256:" + "a" * 64
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["src", "name", "dmap", "registries", "images", DIGEST, "gcr.io/x", "oci:d"]),
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(st.sampled_from(["registries", "images", "name", "src", "dmap"]), scalars),
            children,
            max_size=4,
        ),
    ),
    max_leaves=25,
)
raw_text = st.text(alphabet=st.sampled_from(list("-:[]{}!&*#'\"\n abc12.?|>%@`\t")), max_size=80)


def _load(text: str, thin: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        if thin:
            (root / "manifests" / "p").mkdir(parents=True)
            (root / "images" / "p").mkdir(parents=True)
            (root / "manifests" / "p" / "promoter-manifest.yaml").write_text(
                "registries:\n- name: gcr.io/s\n  src: true\n- name: gcr.io/d\n"
            )
            (root / "images" / "p" / "images.yaml").write_text(text)
            args: tuple[list[str], list[str]] = ([], [str(root)])
        else:
            (root / "m.yaml").write_text(text)
            args = ([str(root / "m.yaml")], [])
        try:
            load_and_validate(*args)
        except ManifestError as error:
            assert error.diagnostics
            assert all(d.file for d in error.diagnostics)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents, st.booleans())
def test_structured_yaml_only_raises_manifest_errors(document: object, thin: bool) -> None:
    _load(yaml.safe_dump(document), thin)


@settings(max_examples=300, deadline=None)
@given(raw_text, st.booleans())
def test_raw_text_only_raises_manifest_errors(text: str, thin: bool) -> None:
    _load(text, thin)
