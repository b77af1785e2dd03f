"""The pipelined runner: frame order with workers, stale frames of live sources, on the real
footage (vtest.avi, the PoseTrack frames) and the real model."""

from __future__ import annotations

import cv2
import numpy as np

from pafpose.video import LiveSource, iter_poses, open_source

from .conftest import MEDIA, need


def test_iter_poses_keeps_order_with_workers(estimator):
    folder = need(MEDIA / "posetrack-frames")
    sequential = [estimator.inference(f.image) for f in open_source(folder)]
    results = list(iter_poses(folder, estimator, workers=3))
    assert [r.frame.index for r in results] == list(range(10))
    for r, humans in zip(results, sequential, strict=True):
        assert [p.id for p in r.people] == [None] * len(humans)
        assert len(r.people) == len(humans)
        for p, h in zip(r.people, humans, strict=True):
            np.testing.assert_allclose(p.human.keypoints, h.keypoints)



def test_live_source_drops_stale_frames(estimator):
    """A live source faster than the network (a video read as fast as it decodes): the runner
    takes the newest frame each time, so indices jump and nothing piles up."""
    video = need(MEDIA / "vtest.avi")
    src = LiveSource(cv2.VideoCapture(str(video)), "fast camera", pace=False)
    results = []
    for result in iter_poses(src, estimator):
        results.append(result)
        if len(results) == 6:
            break
    index = [r.frame.index for r in results]
    assert all(b > a for a, b in zip(index, index[1:], strict=False))
    assert index[-1] - index[0] > 10  # a frame decodes in ~1 ms, the network takes far longer
    assert src.dropped >= index[-1] - index[0] - 5
    assert src._thread is not None and not src._thread.is_alive()  # stopped and released
