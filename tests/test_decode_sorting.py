"""The compiled stable descending argsort."""

from __future__ import annotations

import numpy as np

from pafpose.decode.sorting import argsort_desc


def test_argsort_desc_is_stable_and_largest_first():
    rng = np.random.default_rng(4)
    for n in (0, 1, 2, 7, 16, 17, 100):
        keys = rng.integers(0, 5, n).astype(np.float32)  # many ties
        want = np.argsort(-keys, kind="stable")
        assert argsort_desc(keys, n).tolist() == want.tolist()
    keys = np.array([0.2, 0.9, 0.5, 0.9], np.float32)
    assert argsort_desc(keys, 3).tolist() == [1, 2, 0]  # only the first n keys
