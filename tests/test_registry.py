"""The named models (models/registry.py)."""

from __future__ import annotations

import re

import pytest

from pafpose.defaults import DEFAULT_MODEL
from pafpose.models.registry import MODELS, CaffeSpec, CheckpointSpec, ModelSpec, get_spec


def test_the_default_model_is_registered() -> None:
    assert get_spec(DEFAULT_MODEL) is MODELS[DEFAULT_MODEL]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_specs_are_complete(name: str) -> None:
    spec = MODELS[name]
    assert spec.name == name and spec.license and spec.description
    if isinstance(spec, ModelSpec):
        assert re.fullmatch(r"[0-9a-f]{64}", spec.archive_sha256)
        assert re.fullmatch(r"[0-9a-f]{64}", spec.member_sha256)
        assert spec.member_size > 0 and spec.stages >= 1
        assert spec.member.endswith(".pb") and spec.project
    elif isinstance(spec, CaffeSpec):
        prototxt, caffemodel = spec.files()
        assert re.fullmatch(r"[0-9a-f]{64}", prototxt.sha256 or "")
        assert re.fullmatch(r"[0-9a-f]{32}", caffemodel.md5 or "")
        assert caffemodel.url.endswith(f"/{spec.folder}/{caffemodel.name}")
        assert "non-commercial" in spec.terms and spec.skeleton in ("body25", "openpose18",
                                                                    "mpi15")
    else:
        assert isinstance(spec, CheckpointSpec) and spec.weights.url.startswith("https://")
        assert spec.refinement_stages in (1, 3)


def test_the_caffe_files_come_from_a_mirror_when_one_is_set(monkeypatch) -> None:
    spec = MODELS["openpose_coco"]
    assert isinstance(spec, CaffeSpec)
    prototxt, caffemodel = spec.files()
    assert prototxt.url.startswith("https://raw.githubusercontent.com/CMU-Perceptual-Computing"
                                   "-Lab/openpose/5c5d96523ef917bd30301245fdc8343937cae48d/")
    monkeypatch.setenv("PAFPOSE_OPENPOSE_URL", "http://127.0.0.1:8/models")
    assert [f.url for f in spec.files()] == [
        "http://127.0.0.1:8/models/pose/coco/pose_deploy_linevec.prototxt",
        "http://127.0.0.1:8/models/pose/coco/pose_iter_440000.caffemodel"]
    assert caffemodel.min_size == 4 * 52_311_446 < caffemodel.max_size


def test_unknown_names_list_the_known_ones() -> None:
    with pytest.raises(KeyError, match=f"unknown model 'nope'; known models: lightweight_openpose, "
                                       f"{DEFAULT_MODEL}, openpose_body25"):
        get_spec("nope")
