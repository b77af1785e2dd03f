"""The named models (models/registry.py)."""

from __future__ import annotations

import re

import pytest

from pafpose.defaults import DEFAULT_MODEL
from pafpose.models.registry import MODELS, ModelSpec, get_spec


def test_the_default_model_is_registered() -> None:
    assert get_spec(DEFAULT_MODEL) is MODELS[DEFAULT_MODEL]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_specs_are_complete(name: str) -> None:
    spec = MODELS[name]
    assert isinstance(spec, ModelSpec) and spec.name == name
    assert re.fullmatch(r"[0-9a-f]{64}", spec.archive_sha256)
    assert re.fullmatch(r"[0-9a-f]{64}", spec.member_sha256)
    assert spec.member_size > 0 and spec.stages >= 1
    assert spec.member.endswith(".pb") and spec.project and spec.license


def test_unknown_names_list_the_known_ones() -> None:
    with pytest.raises(KeyError, match=f"unknown model 'nope'; known models: {DEFAULT_MODEL}"):
        get_spec("nope")
