"""Banded operators: the separable seed smoothing kernel."""

from __future__ import annotations

import math

import numpy as np

from pafpose.decode import seed_kernel_1d

from .decode_maps import (
    seed_kernel_2d,
)


def test_separable_kernel_is_the_seed_kernel():
    v = seed_kernel_1d()
    assert np.allclose(np.outer(v, v), seed_kernel_2d(), rtol=1e-6, atol=1e-9)
    assert v.shape == (25,) and math.isclose(v.sum(), 1.0)
