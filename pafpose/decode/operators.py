"""Upsampling and smoothing as small banded matrices, and the compiled kernels that apply them.

Upsampling and smoothing are linear and separable, so each smoothed heatmap channel is
``Ay @ L @ Ax.T`` for two banded matrices (``Ay``: upsampled rows x low-res rows). For an integer
area factor the upsampling is pixel replication, and the seed's 2-D kernel
``sqrt(outer(w, w)) / sum`` is ``outer(v, v)`` with ``v = sqrt(w) / sum(sqrt(w))``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..jit import jit
from .params import DecodeParams

__all__ = [
    "Axis", "Band", "Operators", "box", "build_operators", "readonly", "sample", "seed_kernel_1d",
    "span", "upsample",
]

# Relative safety margin of the "can this region hold a peak?" bound (float32 rounding).
_BOUND_MARGIN = 1e-4


def seed_kernel_1d(size: int = 25, nsig: float = 3.0) -> np.ndarray:
    """1-D factor v of the seed's 2-D smoothing kernel: kernel2d == outer(v, v) (float64)."""
    # As the seed's Smoother.gauss_kernel: normal-CDF differences over `size` bins, then
    # sqrt(outer(w, w)) normalised to sum 1; the sqrt of an outer product factorises.
    interval = (2.0 * nsig + 1.0) / size
    grid = np.linspace(-nsig - interval / 2.0, nsig + interval / 2.0, size + 1)
    cdf = np.array([0.5 * (1.0 + math.erf(x / math.sqrt(2.0))) for x in grid])
    root = np.sqrt(np.diff(cdf))
    return root / root.sum()


def _smoothing_matrix(n: int, v: np.ndarray) -> np.ndarray:
    """(n, n) matrix of a 1-D correlation with v and zero ("SAME") padding, as TF pads."""
    size = v.shape[0]
    mat = np.zeros((n, n))
    flat = mat.ravel()
    for t in range(size):
        k = t - (size - 1) // 2  # diagonal k: out[y] += v[t] * in[y + k]
        if -n < k < n:
            start = k if k >= 0 else -k * n
            flat[start : start + (n - abs(k)) * (n + 1) : n + 1] = v[t]
    return mat


def _area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) matrix of TF's resize_area (align_corners=False); replication if integer."""
    mat = np.zeros((n_out, n_in))
    if n_out % n_in == 0:
        mat[np.arange(n_out), np.arange(n_out) // (n_out // n_in)] = 1.0
        return mat
    scale = n_in / n_out
    for o in range(n_out):
        lo, hi = o * scale, (o + 1) * scale
        for i in range(int(math.floor(lo)), int(math.ceil(hi))):
            overlap = min(i + 1.0, hi) - max(float(i), lo)
            if overlap > 0:
                mat[o, min(i, n_in - 1)] += overlap / scale
    return mat


def _interp_matrix(n_in: int, n_out: int, method: str) -> np.ndarray:
    """(n_out, n_in) upsampling matrix; cubic/linear are exactly cv2.resize's weights."""
    if n_in == n_out:
        return np.eye(n_in)
    if method == "area":
        return _area_matrix(n_in, n_out)
    flag = cv2.INTER_CUBIC if method == "cubic" else cv2.INTER_LINEAR
    # Resizing the identity along one axis yields that axis's weight matrix of cv2.resize.
    eye = np.eye(n_in, dtype=np.float32)
    return cv2.resize(eye, (n_in, n_out), interpolation=flag).astype(np.float64)


def readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@dataclass(frozen=True)
class Band:
    """A banded (n_out, n_in) float32 matrix with its non-zero ranges (read-only arrays)."""

    mat: np.ndarray  # (n_out, n_in)
    mat_t: np.ndarray  # (n_in, n_out), contiguous
    lo: np.ndarray  # (n_out,) int64: first / last non-zero input index of each output
    hi: np.ndarray
    clo: np.ndarray  # (n_in,) int64: first / last output index each input reaches
    chi: np.ndarray

    @staticmethod
    def of(mat64: np.ndarray) -> Band:
        """Band description of a matrix (computed in float64, stored as float32)."""
        mat = mat64.astype(np.float32)
        nz = mat != 0
        n_out, n_in = mat.shape
        any_r, any_c = nz.any(axis=1), nz.any(axis=0)
        lo = np.where(any_r, nz.argmax(axis=1), n_in)
        hi = np.where(any_r, n_in - 1 - nz[:, ::-1].argmax(axis=1), -1)
        clo = np.where(any_c, nz.argmax(axis=0), n_out)
        chi = np.where(any_c, n_out - 1 - nz[::-1, :].argmax(axis=0), -1)
        return Band(
            *(readonly(np.ascontiguousarray(a)) for a in (mat, mat.T)),
            *(readonly(a.astype(np.int64)) for a in (lo, hi, clo, chi)),
        )


@dataclass(frozen=True)
class Axis:
    """Operators along one axis (rows or columns) for one map size."""

    n_in: int
    n_out: int
    up: Band  # upsampling only: scores, PAF samples
    nms: Band  # upsampling then smoothing: the map NMS runs on
    gain: float  # max over outputs of sum |nms[o, :]|
    nonneg: bool


def _build_axis(n_in: int, n_out: int, params: DecodeParams, v: np.ndarray | None) -> Axis:
    up = _interp_matrix(n_in, n_out, params.upsample_method)
    nms = up if v is None else _smoothing_matrix(n_out, v) @ up
    nms_band = Band.of(nms)
    up_band = Band.of(up)
    return Axis(
        n_in=n_in,
        n_out=n_out,
        up=up_band,
        nms=nms_band,
        gain=float(np.abs(nms_band.mat.astype(np.float64)).sum(axis=1).max()),
        nonneg=bool((nms_band.mat >= 0).all()),
    )


@dataclass(frozen=True)
class Operators:
    """Everything precomputed for one low-res map size (read-only, shared between threads)."""

    y: Axis
    x: Axis
    replicate: int  # integer area factor (reads by integer division), 0 = use the weights
    bound: float  # low-res values not above this cannot produce a peak
    nonneg: bool
    lowres: Operators | None = None  # where to search peaks, if not on the upsampled map


def build_operators(
    h: int, w: int, out_h: int, out_w: int, params: DecodeParams, kernel: np.ndarray | None
) -> Operators:
    """Operators from low-res maps of h x w to upsampled maps of out_h x out_w.

    kernel: the 1-D smoothing factor (seed_kernel_1d) or None for no smoothing.
    """
    p = params
    ay = _build_axis(h, out_h, p, kernel)
    ax = _build_axis(w, out_w, p, kernel)
    replicate = 0  # integer area factor: upsampling is pixel replication
    if p.upsample_method == "area" or (out_h == h and out_w == w):
        if out_h % h == 0 and out_w % w == 0 and out_h // h == out_w // w:
            replicate = out_h // h
    lowres = None
    if p.smooth == "none" and p.upsample_method == "area" and out_h * out_w > h * w:
        # Area upsampling without smoothing turns every low-res pixel into a plateau wider
        # than the NMS window: find the peaks on the low-res map instead.
        lowres = build_operators(h, w, h, w, params, kernel)
    bound = p.heat_threshold / (ay.gain * ax.gain) * (1.0 - _BOUND_MARGIN)
    return Operators(
        y=ay, x=ax, replicate=replicate, bound=bound, nonneg=ay.nonneg and ax.nonneg,
        lowres=lowres,
    )


# --------------------------------------------------------------------------------------------
# Compiled kernels (numba)
# --------------------------------------------------------------------------------------------


@jit
def sample(maps, ch, y, x, rep, uy, uy_lo, uy_hi, ux, ux_lo, ux_hi):
    """Value of the upsampled channel ch at integer pixel (y, x), read from the low-res map."""
    if rep > 0:
        return maps[ch, y // rep, x // rep]
    acc = np.float32(0.0)
    for i in range(uy_lo[y], uy_hi[y] + 1):
        row = np.float32(0.0)
        for j in range(ux_lo[x], ux_hi[x] + 1):
            row += ux[x, j] * maps[ch, i, j]
        acc += uy[y, i] * row
    return acc


@jit
def span(lo, hi, a, b, none):
    """(min of lo[a..b], max of hi[a..b]): the indices a run of band rows reaches; (none, -1)
    if it reaches none."""
    first, last = none, -1
    for k in range(a, b + 1):
        first = min(first, lo[k])
        last = max(last, hi[k])
    return first, last


@jit
def box(
    src, ay, ay_lo, ay_hi, axt, ax_lo, ax_hi, ax_clo, ax_chi,
    ya, yb, xa, xb, src_t, rows_t, rows, out, pad,
):
    """out[pad + y, pad + x] = (Ay @ src @ Ax.T)[y, x] on the box [ya, yb] x [xa, xb].

    Horizontal pass (on transposed copies, so that its short bands become long vectorised
    loops over the low-res rows), then vertical pass on the rows; both banded. Every value is
    a sum in a fixed order, whatever the box. src_t, rows_t, rows: scratch of shapes (w, h),
    (out_w, h), (h, out_w).
    """
    ia, ib = span(ay_lo, ay_hi, ya, yb, src.shape[0])
    ja, jb = span(ax_lo, ax_hi, xa, xb, src.shape[1])
    ni = ib - ia + 1
    if ni <= 0 or jb < ja:
        ni = 0
    for j in range(ja, jb + 1):
        for i in range(ni):
            src_t[j, i] = src[ia + i, j]
    for x in range(xa, xb + 1):
        acc = rows_t[x, :ni]
        for k in range(ni):
            acc[k] = 0.0
    for j in range(ja, jb + 1):
        col = src_t[j, :ni]
        for x in range(max(ax_clo[j], xa), min(ax_chi[j], xb) + 1):
            wx = axt[j, x]
            acc = rows_t[x, :ni]
            for k in range(ni):
                acc[k] += wx * col[k]
    for i in range(ni):
        row = rows[ia + i]
        for x in range(xa, xb + 1):
            row[x] = rows_t[x, i]
    for y in range(ya, yb + 1):
        acc = out[pad + y, pad + xa : pad + xb + 1]
        for k in range(acc.shape[0]):
            acc[k] = 0.0
        for i in range(ay_lo[y], ay_hi[y] + 1):
            wy = ay[y, i]
            row_in = rows[i, xa : xb + 1]
            for k in range(acc.shape[0]):
                acc[k] += wy * row_in[k]


@jit
def upsample(maps, ay, ay_lo, ay_hi, axt, ax_lo, ax_hi, ax_clo, ax_chi):
    """All channels of maps upsampled: Ay @ maps[c] @ Ax.T."""
    out_h = ay.shape[0]
    out_w = axt.shape[1]
    h, w = maps.shape[1], maps.shape[2]
    out = np.empty((maps.shape[0], out_h, out_w), dtype=np.float32)
    src_t = np.empty((w, h), dtype=np.float32)
    rows_t = np.empty((out_w, h), dtype=np.float32)
    rows = np.empty((h, out_w), dtype=np.float32)
    for c in range(maps.shape[0]):
        box(maps[c], ay, ay_lo, ay_hi, axt, ax_lo, ax_hi, ax_clo, ax_chi,
             0, out_h - 1, 0, out_w - 1, src_t, rows_t, rows, out[c], 0)
    return out
