"""Part candidates: peaks of the smoothed, upsampled heatmaps (NMS, sub-pixel fit, cap per part).

The smoothing weights are non-negative and sum to at most 1, so a smoothed pixel can exceed the
heat threshold only near a low-res pixel that does. Smoothing and NMS run on the box around
those pixels (kernel reach plus NMS margin), channel by channel. This is exact.
"""

from __future__ import annotations

import numpy as np

from ..jit import jit
from .operators import Operators, box, sample, span
from .params import DecodeParams, Peaks
from .sorting import argsort_desc

__all__ = ["find_peaks"]


def find_peaks(heat: np.ndarray, n_parts: int, ops: Operators, params: DecodeParams) -> Peaks:
    """Peaks of the first n_parts channels of heat (validated float32 maps, channels first)."""
    p = params
    search = ops if ops.lowres is None else ops.lowres
    ny, nx = search.y.nms, search.x.nms
    uy, ux = search.y.up, search.x.up
    chans, fx, fy, scores = _find_peaks(
        heat, n_parts, ny.mat, ny.lo, ny.hi, ny.clo, ny.chi,
        nx.mat_t, nx.lo, nx.hi, nx.clo, nx.chi,
        search.replicate, uy.mat, uy.lo, uy.hi, ux.mat, ux.lo, ux.hi,
        np.float32(p.heat_threshold), np.float32(search.bound), search.nonneg,
        not p.heat_threshold > 0, p.nms_window // 2, p.smooth == "none", p.refine,
        p.max_peaks,
    )
    if ops.lowres is not None:  # low-res pixel -> centre of its block
        fx = ((fx + 0.5) * (ops.x.n_out / ops.x.n_in) - 0.5).astype(np.float32)
        fy = ((fy + 0.5) * (ops.y.n_out / ops.y.n_in) - 0.5).astype(np.float32)
    return Peaks(chans, fx, fy, scores, (ops.x.n_out, ops.y.n_out))


# --------------------------------------------------------------------------------------------
# Compiled kernels (numba)
# --------------------------------------------------------------------------------------------


@jit
def _parabola(lo, mid, hi):
    """Vertex offset in [-0.5, 0.5] of the parabola through (-1, lo), (0, mid), (1, hi)."""
    den = np.float64(lo) - 2.0 * np.float64(mid) + np.float64(hi)
    if not den < 0.0:
        return np.float32(0.0)
    off = 0.5 * (np.float64(lo) - np.float64(hi)) / den
    if not np.isfinite(off):
        return np.float32(0.0)
    return np.float32(min(max(off, -0.5), 0.5))


@jit
def _grow(a):
    """a (n, k) copied into an array of twice the rows."""
    out = np.empty((2 * a.shape[0], a.shape[1]), dtype=a.dtype)
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            out[i, j] = a[i, j]
    return out


@jit
def _keep_strongest(found, first, n, k):
    """Keep the k rows of found[first:n] with the largest value (column 5), in their order."""
    order = argsort_desc(found[first:n, 5], n - first)  # stable: ties keep raster order
    keep = np.sort(order[:k])
    for r in range(keep.shape[0]):
        for col in range(found.shape[1]):
            found[first + r, col] = found[first + keep[r], col]
    return first + keep.shape[0]


@jit
def _find_peaks(
    heat, n_parts, ay, ay_lo, ay_hi, ay_clo, ay_chi,
    axt, ax_lo, ax_hi, ax_clo, ax_chi,
    rep, uy, uy_lo, uy_hi, ux, ux_lo, ux_hi,
    thr, bound, nonneg, dense, nms_half, strict_ties, refine, max_peaks,
):
    """Peaks of Ay @ heat[c] @ Ax.T (the seed's smoothed upsampled map), channel by channel.

    Only the box that can hold a value > thr is computed: around the low-res pixels above
    `bound` (the map is a weighted mean of them), widened by the NMS margin. A peak equals the
    max of its window (the seed keeps every pixel of a plateau); with strict_ties only the
    first pixel of a plateau in raster order (pixel replication without smoothing makes
    plateaus). At most max_peaks per channel: the largest NMS values (ties: raster order).
    """
    h = heat.shape[1]
    w = heat.shape[2]
    out_h = ay.shape[0]
    out_w = axt.shape[1]
    pad = nms_half
    margin = max(nms_half, 1) if refine else nms_half  # the parabola needs the neighbours
    # NMS map with a frame of -inf: outside pixels never win, as in TF's max pool.
    sm = np.full((out_h + 2 * pad, out_w + 2 * pad), -np.inf, dtype=np.float32)
    src_t = np.empty((w, h), dtype=np.float32)
    rows_t = np.empty((out_w, h), dtype=np.float32)
    rows = np.empty((h, out_w), dtype=np.float32)
    flags = np.empty(out_w, dtype=np.bool_)
    # part, row, column, sub-pixel row, sub-pixel column, NMS value
    found = np.empty((64, 6), dtype=np.float64)
    n = 0
    # a channel's peaks are pruned to the strongest max_peaks whenever they reach `prune`
    prune = max(4 * max_peaks, 256)
    for c in range(n_parts):
        first = n
        floor = -np.inf  # after a pruning: values not above this cannot enter the top
        # low-res box of the pixels that can lift the smoothed map above the threshold
        if dense:
            i0, i1, j0, j1 = 0, h - 1, 0, w - 1
        else:
            i0, i1, j0, j1 = h, -1, w, -1
            for i in range(h):
                for j in range(w):
                    lv = heat[c, i, j]
                    if (lv > bound) if nonneg else (abs(lv) > bound):
                        i0 = min(i0, i)
                        i1 = max(i1, i)
                        j0 = min(j0, j)
                        j1 = max(j1, j)
            if i1 < 0:
                continue
        # output pixels that may be peaks, and the NMS margin around them
        y0, y1 = span(ay_clo, ay_chi, i0, i1, out_h)
        x0, x1 = span(ax_clo, ax_chi, j0, j1, out_w)
        if y0 > y1 or x0 > x1:
            continue
        ya, yb = max(y0 - margin, 0), min(y1 + margin, out_h - 1)
        xa, xb = max(x0 - margin, 0), min(x1 + margin, out_w - 1)
        box(heat[c], ay, ay_lo, ay_hi, axt, ax_lo, ax_hi, ax_clo, ax_chi,
             ya, yb, xa, xb, src_t, rows_t, rows, sm, pad)
        # NMS as the seed: value > thr and equal to the max of its window. Vectorised tests
        # per row first, so that the scalar scan below runs on a few rows only.
        nx = x1 - x0 + 1
        ok = flags[:nx]
        for y in range(y0, y1 + 1):
            cen = sm[y + pad, x0 + pad : x0 + pad + nx]
            n_ok = 0
            for k in range(nx):
                above = cen[k] > thr
                ok[k] = above
                n_ok += above
            if n_ok == 0:
                continue
            # same column first: on a smooth map few pixels survive it, and the row is
            # skipped early; then the other columns of the window
            for phase in range(2):
                for dx in range(-nms_half, nms_half + 1):
                    if (dx == 0) != (phase == 0):
                        continue
                    for dy in range(-nms_half, nms_half + 1):
                        if dy == 0 and dx == 0:
                            continue
                        nb = sm[y + pad + dy, x0 + pad + dx : x0 + pad + dx + nx]
                        if strict_ties and (dy < 0 or (dy == 0 and dx < 0)):
                            for k in range(nx):  # one peak per plateau: its first pixel
                                ok[k] = ok[k] & (cen[k] > nb[k])
                        else:
                            for k in range(nx):
                                ok[k] = ok[k] & (cen[k] >= nb[k])
                n_ok = 0
                for k in range(nx):
                    n_ok += ok[k]
                if n_ok == 0:
                    break
            if n_ok == 0:
                continue
            for k in range(nx):
                if not ok[k] or cen[k] <= floor:
                    continue
                x = x0 + k
                if n - first >= prune:
                    n = _keep_strongest(found, first, n, max_peaks)
                    floor = found[first:n, 5].min()
                    if cen[k] <= floor:
                        continue
                if n == found.shape[0]:
                    found = _grow(found)
                sub_y = np.float32(y)
                sub_x = np.float32(x)
                if refine:
                    v = cen[k]
                    if 0 < y < out_h - 1:
                        sub_y += _parabola(sm[y + pad - 1, x + pad], v, sm[y + pad + 1, x + pad])
                    if 0 < x < out_w - 1:
                        sub_x += _parabola(sm[y + pad, x + pad - 1], v, sm[y + pad, x + pad + 1])
                found[n, 0] = c
                found[n, 1] = y
                found[n, 2] = x
                found[n, 3] = sub_y
                found[n, 4] = sub_x
                found[n, 5] = cen[k]
                n += 1
        if n - first > max_peaks:
            n = _keep_strongest(found, first, n, max_peaks)
    # the seed reads the score from the unsmoothed upsampled heatmap
    chans = np.empty(n, dtype=np.int64)
    fx = np.empty(n, dtype=np.float32)
    fy = np.empty(n, dtype=np.float32)
    scores = np.empty(n, dtype=np.float32)
    for k in range(n):
        c, y, x = int(found[k, 0]), int(found[k, 1]), int(found[k, 2])
        chans[k] = c
        fy[k] = found[k, 3]
        fx[k] = found[k, 4]
        scores[k] = sample(heat, c, y, x, rep, uy, uy_lo, uy_hi, ux, ux_lo, ux_hi)
    return chans, fx, fy, scores
