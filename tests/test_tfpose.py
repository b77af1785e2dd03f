"""The tf-pose-estimation shim: the seed's class, method and attribute names."""

from __future__ import annotations

import numpy as np
import pytest

from pafpose import PoseEstimator
from pafpose.tfpose import TfPoseEstimator, get_graph_path, model_wh


def test_tfpose_shim_matches(thin_pb, astronaut):
    seed_like = TfPoseEstimator("mobilenet_thin", target_size=(432, 368))
    humans = seed_like.inference(astronaut, resize_to_default=True, upsample_size=4.0)
    ours = PoseEstimator(preset="seed", progress=False).inference(astronaut, upsample_size=4.0)
    assert [h.body_parts.keys() for h in humans] == [h.body_parts.keys() for h in ours]
    assert seed_like.heatMat.shape == (184, 216, 19) and seed_like.pafMat.shape == (184, 216, 38)
    drawn = TfPoseEstimator.draw_humans(astronaut, humans, imgcopy=True)
    assert drawn.shape == astronaut.shape and not np.array_equal(drawn, astronaut)


def test_tfpose_helpers():
    assert model_wh("432x368") == (432, 368)
    with pytest.raises(ValueError, match="multiples of 16"):
        model_wh("430x368")
    assert get_graph_path("mobilenet_thin") == "mobilenet_thin"
