"""DecodeParams: validation of the settings."""

from __future__ import annotations

import pytest

from pafpose.decode import DecodeParams


def test_bad_params_raise_value_error():
    for kwargs in (
        {"upsample": 0.0},
        {"upsample": float("nan")},
        {"upsample_method": "nearest"},
        {"smooth": "gauss"},
        {"nms_window": 2},
        {"paf_samples": 0},
    ):
        with pytest.raises(ValueError):
            DecodeParams(**kwargs)


def test_attach_cells_off_in_the_seed_and_validated():
    assert DecodeParams().attach_cells == 0.0
    with pytest.raises(ValueError, match="attach_cells"):
        DecodeParams(attach_cells=-1.0)
    with pytest.raises(ValueError, match="attach_cells"):
        DecodeParams(attach_cells=float("nan"))
