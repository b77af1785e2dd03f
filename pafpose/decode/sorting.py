"""A stable descending argsort for the compiled kernels (peak capping, limb matching)."""

from __future__ import annotations

import numpy as np

from ..jit import jit

__all__ = ["argsort_desc"]


@jit
def argsort_desc(keys, n):
    """Stable order of keys[:n], largest first (bottom-up merge sort)."""
    order = np.empty(n, dtype=np.int64)
    tmp = np.empty(n, dtype=np.int64)
    for i in range(n):
        order[i] = i
    width = 1
    while width < n:
        for lo in range(0, n, 2 * width):
            mid = min(lo + width, n)
            hi = min(lo + 2 * width, n)
            i, j, k = lo, mid, lo
            while i < mid and j < hi:
                if keys[order[j]] > keys[order[i]]:  # ties: the earlier element first
                    tmp[k] = order[j]
                    j += 1
                else:
                    tmp[k] = order[i]
                    i += 1
                k += 1
            while i < mid:
                tmp[k] = order[i]
                i += 1
                k += 1
            while j < hi:
                tmp[k] = order[j]
                j += 1
                k += 1
        order, tmp = tmp, order
        width *= 2
    return order
