"""Network maps -> people: the bottom-up OpenPose decoder (heatmap peaks + PAF grouping).

With the default :class:`DecodeParams` the output equals tf-pose-estimation's (the "seed"):
``TfPoseEstimator`` (area upsampling, 25x25 Gaussian smoothing with zero padding, 3x3 max NMS)
followed by ``pafprocess.cpp`` (limb scoring along the PAFs, greedy matching, people assembly).

How that is computed without materialising the seed's big upsampled maps:

* Upsampling and smoothing are linear and separable, so each smoothed heatmap channel is
  ``Ay @ L @ Ax.T`` for two small banded matrices (``Ay``: upsampled rows x low-res rows). For an
  integer area factor the upsampling is pixel replication, and the seed's 2-D kernel
  ``sqrt(outer(w, w)) / sum`` is ``outer(v, v)`` with ``v = sqrt(w) / sum(sqrt(w))``.
* The smoothing weights are non-negative and sum to at most 1, so a smoothed pixel can exceed
  the heat threshold only near a low-res pixel that does. Smoothing and NMS run on the box
  around those pixels (kernel reach plus NMS margin), channel by channel. This is exact.
* PAFs are not upsampled for integer area factors: the sample at upsampled pixel (x, y) is
  ``pafs[c, y // r, x // r]``. Other methods interpolate each sample from the low-res map, or
  upsample the PAFs once when there are many samples.
* The grouping (limb scoring, matching, assembly) is a compiled loop (numba when installed)
  that follows the seed's C++ step by step, including its float32 arithmetic and quirks.

Known limits of the parity: candidates with equal scores keep their enumeration order (stable
sort; ``std::sort`` does the same up to 16 candidates per limb), and where two neighbouring
smoothed pixels are mathematically equal (perfectly symmetric maps) float rounding decides
which is a peak, here as in TensorFlow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from pafpose.jit import jit
from pafpose.skeleton import (
    LIMB_PAF_CHANNELS,
    LIMBS,
    NUM_HEATMAPS,
    NUM_LIMBS_STARTING_PERSON,
    NUM_PAFS,
    NUM_PARTS,
    PARTS,
)

__all__ = ["DecodeParams", "Decoder", "Peaks", "Poses", "decode", "seed_kernel_1d"]

UPSAMPLE_METHODS: tuple[str, ...] = ("area", "cubic", "linear")
SMOOTH_MODES: tuple[str, ...] = ("seed", "none")

# Relative safety margin of the "can this region hold a peak?" bound (float32 rounding).
_BOUND_MARGIN = 1e-4
# Operators are cached per map size; a decoder that sees more sizes than this starts afresh.
_MAX_CACHED_SIZES = 16
# Map values are clipped to +-this (network maps are about [-1, 1]): sums stay finite.
_MAX_ABS = np.float32(1e6)


# --------------------------------------------------------------------------------------------
# Public data types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DecodeParams:
    """Decoder settings; the defaults reproduce tf-pose-estimation exactly."""

    #: Upsampling factor of the maps (the seed's ``resize_out_ratio``); 1.0 = none.
    upsample: float = 4.0
    #: "area" (seed: TF resize_area, pixel replication for integer factors), "cubic", "linear".
    upsample_method: str = "area"
    #: "seed": the seed's Gaussian smoothing of the upsampled heatmaps; "none": no smoothing
    #: (then NMS keeps one peak per plateau, since replicated maps are made of plateaus).
    smooth: str = "seed"
    #: Seed Smoother filter size (``Smoother(..., 25, 3.0)``).
    smooth_size: int = 25
    #: Seed Smoother "sigma": really the half-width of the normal-CDF grid (``nsig``).
    smooth_nsig: float = 3.0
    #: NMS window (the seed's 3x3 max pool); odd.
    nms_window: int = 3
    #: Quadratic sub-pixel peak fit on the NMS map (not in the seed).
    refine: bool = False
    #: A peak needs NMS-map value > this (seed THRESH_HEAT).
    heat_threshold: float = 0.05
    #: A PAF sample counts when PAF . unit > this (seed THRESH_VECTOR_SCORE).
    paf_threshold: float = 0.05
    #: Samples along a candidate limb (seed STEP_PAF).
    paf_samples: int = 10
    #: Samples above paf_threshold needed (seed: THRESH_VECTOR_CNT1 = 6, strictly more).
    paf_min_count: int = 7
    #: Limb length penalty min(0, ratio * map_height / length - 1) (the seed's 0.5).
    limb_length_ratio: float = 0.5
    #: A person needs at least this part count (seed THRESH_PART_CNT).
    min_parts: int = 4
    #: A person needs score >= this (seed THRESH_HUMAN_SCORE).
    min_score: float = 0.3
    #: Merge two partial people that share no part when a limb joins them (OpenPose's rule).
    #: The compiled seed never merges: its ``membership`` flag is uninitialised and optimising
    #: compilers fold the merge branch away, so False is the seed's behaviour.
    merge_disjoint: bool = False
    #: Join a person without a neck (in small people: a shoulder, its arm and the ear) to the
    #: person whose neck lies within this many cells of the given maps of its shoulder and who
    #: has none of its parts. There the shoulder's peak sits on the neck's, a limb too short
    #: for the PAF to give a direction, so the seed's grouping leaves the arm as a "person" of
    #: its own. 0 = never (the seed).
    attach_cells: float = 0.0
    #: Peaks kept per part, the strongest (by the value NMS sees); OpenPose keeps
    #: POSE_MAX_PEOPLE = 127. Bounds the grouping's work on any map (all ones, noise).
    max_peaks: int = 127

    def __post_init__(self) -> None:
        """Validate the settings."""
        if not (math.isfinite(self.upsample) and self.upsample > 0):
            raise ValueError(f"upsample must be a positive number, got {self.upsample!r}")
        if self.upsample_method not in UPSAMPLE_METHODS:
            raise ValueError(
                f"upsample_method must be one of {UPSAMPLE_METHODS}, got {self.upsample_method!r}"
            )
        if self.smooth not in SMOOTH_MODES:
            raise ValueError(f"smooth must be one of {SMOOTH_MODES}, got {self.smooth!r}")
        if self.smooth_size < 1 or not self.smooth_nsig > 0:
            raise ValueError("smooth_size must be >= 1 and smooth_nsig > 0")
        if self.nms_window < 1 or self.nms_window % 2 == 0:
            raise ValueError(f"nms_window must be a positive odd number, got {self.nms_window}")
        if self.max_peaks < 1:
            raise ValueError(f"max_peaks must be >= 1, got {self.max_peaks}")
        if self.paf_samples < 1:
            raise ValueError(f"paf_samples must be >= 1, got {self.paf_samples}")
        if not (math.isfinite(self.attach_cells) and self.attach_cells >= 0):
            raise ValueError(f"attach_cells must be >= 0, got {self.attach_cells!r}")
        for name in ("heat_threshold", "paf_threshold", "limb_length_ratio", "min_score"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be finite")


@dataclass
class Poses:
    """People found in one set of maps."""

    #: (N, 18, 3) float32: x, y in upsampled-map pixels (column, row) and score; missing = 0.
    keypoints: np.ndarray
    #: (N,) float32 person scores, as the seed reports them (human.score).
    scores: np.ndarray
    #: (width, height) of the upsampled map the coordinates refer to.
    map_size: tuple[int, int]

    def __len__(self) -> int:
        """Number of people."""
        return int(self.scores.shape[0])


@dataclass
class Peaks:
    """Heatmap peaks (part candidates), ordered by part, then row, then column, as the seed."""

    #: (M,) int64 part index of each peak.
    parts: np.ndarray
    #: (M,) float32 column in upsampled-map pixels (sub-pixel when refining).
    xs: np.ndarray
    #: (M,) float32 row in upsampled-map pixels (sub-pixel when refining).
    ys: np.ndarray
    #: (M,) float32 value of the upsampled, unsmoothed heatmap at the (integer) peak.
    scores: np.ndarray
    #: (width, height) of the upsampled map.
    map_size: tuple[int, int]


# --------------------------------------------------------------------------------------------
# Linear operators (upsampling, smoothing) as small banded matrices
# --------------------------------------------------------------------------------------------


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


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@dataclass(frozen=True)
class _Band:
    """A banded (n_out, n_in) float32 matrix with its non-zero ranges (read-only arrays)."""

    mat: np.ndarray  # (n_out, n_in)
    mat_t: np.ndarray  # (n_in, n_out), contiguous
    lo: np.ndarray  # (n_out,) int64: first / last non-zero input index of each output
    hi: np.ndarray
    clo: np.ndarray  # (n_in,) int64: first / last output index each input reaches
    chi: np.ndarray

    @staticmethod
    def of(mat64: np.ndarray) -> _Band:
        """Band description of a matrix (computed in float64, stored as float32)."""
        mat = mat64.astype(np.float32)
        nz = mat != 0
        n_out, n_in = mat.shape
        any_r, any_c = nz.any(axis=1), nz.any(axis=0)
        lo = np.where(any_r, nz.argmax(axis=1), n_in)
        hi = np.where(any_r, n_in - 1 - nz[:, ::-1].argmax(axis=1), -1)
        clo = np.where(any_c, nz.argmax(axis=0), n_out)
        chi = np.where(any_c, n_out - 1 - nz[::-1, :].argmax(axis=0), -1)
        return _Band(
            *(_readonly(np.ascontiguousarray(a)) for a in (mat, mat.T)),
            *(_readonly(a.astype(np.int64)) for a in (lo, hi, clo, chi)),
        )


@dataclass(frozen=True)
class _Axis:
    """Operators along one axis (rows or columns) for one map size."""

    n_in: int
    n_out: int
    up: _Band  # upsampling only: scores, PAF samples
    nms: _Band  # upsampling then smoothing: the map NMS runs on
    gain: float  # max over outputs of sum |nms[o, :]|
    nonneg: bool


def _build_axis(n_in: int, n_out: int, params: DecodeParams, v: np.ndarray | None) -> _Axis:
    up = _interp_matrix(n_in, n_out, params.upsample_method)
    nms = up if v is None else _smoothing_matrix(n_out, v) @ up
    nms_band = _Band.of(nms)
    up_band = _Band.of(up)
    return _Axis(
        n_in=n_in,
        n_out=n_out,
        up=up_band,
        nms=nms_band,
        gain=float(np.abs(nms_band.mat.astype(np.float64)).sum(axis=1).max()),
        nonneg=bool((nms_band.mat >= 0).all()),
    )


@dataclass(frozen=True)
class _Operators:
    """Everything precomputed for one low-res map size (read-only, shared between threads)."""

    y: _Axis
    x: _Axis
    replicate: int  # integer area factor (reads by integer division), 0 = use the weights
    bound: float  # low-res values not above this cannot produce a peak
    nonneg: bool
    lowres: _Operators | None = None  # where to search peaks, if not on the upsampled map


# --------------------------------------------------------------------------------------------
# Compiled kernels (numba-compatible plain Python)
# --------------------------------------------------------------------------------------------


@jit
def _sample(maps, ch, y, x, rep, uy, uy_lo, uy_hi, ux, ux_lo, ux_hi):
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
def _box(
    src, ay, ay_lo, ay_hi, axt, ax_lo, ax_hi, ax_clo, ax_chi,
    ya, yb, xa, xb, src_t, rows_t, rows, out, pad,
):
    """out[pad + y, pad + x] = (Ay @ src @ Ax.T)[y, x] on the box [ya, yb] x [xa, xb].

    Horizontal pass (on transposed copies, so that its short bands become long vectorised
    loops over the low-res rows), then vertical pass on the rows; both banded. Every value is
    a sum in a fixed order, whatever the box. src_t, rows_t, rows: scratch of shapes (w, h),
    (out_w, h), (h, out_w).
    """
    ia, ib, ja, jb = src.shape[0], -1, src.shape[1], -1
    for y in range(ya, yb + 1):
        ia = min(ia, ay_lo[y])
        ib = max(ib, ay_hi[y])
    for x in range(xa, xb + 1):
        ja = min(ja, ax_lo[x])
        jb = max(jb, ax_hi[x])
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
def _upsample(maps, ay, ay_lo, ay_hi, axt, ax_lo, ax_hi, ax_clo, ax_chi):
    """All channels of maps upsampled: Ay @ maps[c] @ Ax.T."""
    out_h = ay.shape[0]
    out_w = axt.shape[1]
    h, w = maps.shape[1], maps.shape[2]
    out = np.empty((maps.shape[0], out_h, out_w), dtype=np.float32)
    src_t = np.empty((w, h), dtype=np.float32)
    rows_t = np.empty((out_w, h), dtype=np.float32)
    rows = np.empty((h, out_w), dtype=np.float32)
    for c in range(maps.shape[0]):
        _box(maps[c], ay, ay_lo, ay_hi, axt, ax_lo, ax_hi, ax_clo, ax_chi,
             0, out_h - 1, 0, out_w - 1, src_t, rows_t, rows, out[c], 0)
    return out


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
    order = _argsort_desc(found[first:n, 5], n - first)  # stable: ties keep raster order
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
        y0, y1, x0, x1 = out_h, -1, out_w, -1
        for i in range(i0, i1 + 1):
            y0 = min(y0, ay_clo[i])
            y1 = max(y1, ay_chi[i])
        for j in range(j0, j1 + 1):
            x0 = min(x0, ax_clo[j])
            x1 = max(x1, ax_chi[j])
        if y0 > y1 or x0 > x1:
            continue
        ya, yb = max(y0 - margin, 0), min(y1 + margin, out_h - 1)
        xa, xb = max(x0 - margin, 0), min(x1 + margin, out_w - 1)
        _box(heat[c], ay, ay_lo, ay_hi, axt, ax_lo, ax_hi, ax_clo, ax_chi,
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
        scores[k] = _sample(heat, c, y, x, rep, uy, uy_lo, uy_hi, ux, ux_lo, ux_hi)
    return chans, fx, fy, scores


@jit
def _argsort_desc(keys, n):
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


@jit
def _group(
    px, py, pscore, part_start, pafs, rep, uy, uy_lo, uy_hi, ux, ux_lo, ux_hi,
    map_h, map_w,
    limbs, limb_pafs, n_start, paf_thr, n_samples, min_count,
    length_ratio, min_parts, min_score, merge,
):
    """The seed's pafprocess: limb scoring, greedy matching, people assembly, filtering.

    The PAF at upsampled pixel (x, y) is pafs[c, y // rep, x // rep], or interpolated from
    the low-res pafs with the weights uy, ux if rep == 0. Returns the peak index of every part
    of every person (-1: none) and the person scores, in the seed's order.
    """
    n_limbs = limbs.shape[0]
    fsteps = np.float32(n_samples)
    max_fails = n_samples - min_count

    # ---- limb candidates and greedy one-to-one matching, limb by limb ----
    max_conn = 0
    for li in range(n_limbs):
        na = part_start[limbs[li, 0] + 1] - part_start[limbs[li, 0]]
        nb = part_start[limbs[li, 1] + 1] - part_start[limbs[li, 1]]
        max_conn += min(na, nb)
    conn_c1 = np.empty(max_conn, dtype=np.int64)
    conn_c2 = np.empty(max_conn, dtype=np.int64)
    conn_s = np.empty(max_conn, dtype=np.float32)
    conn_start = np.zeros(n_limbs + 1, dtype=np.int64)
    n_conn = 0
    for li in range(n_limbs):
        conn_start[li] = n_conn
        a0 = part_start[limbs[li, 0]]
        na = part_start[limbs[li, 0] + 1] - a0
        b0 = part_start[limbs[li, 1]]
        nb = part_start[limbs[li, 1] + 1] - b0
        if na == 0 or nb == 0:
            continue
        chx = limb_pafs[li, 0]
        chy = limb_pafs[li, 1]
        cand_a = np.empty(na * nb, dtype=np.int64)
        cand_b = np.empty(na * nb, dtype=np.int64)
        cand_s = np.empty(na * nb, dtype=np.float32)
        n_cand = 0
        for ia in range(na):
            xa = px[a0 + ia]
            ya = py[a0 + ia]
            for ib in range(nb):
                # float32 arithmetic as the seed's C++ (left to right, no FMA)
                vx = px[b0 + ib] - xa
                vy = py[b0 + ib] - ya
                norm = np.sqrt(vx * vx + vy * vy)
                if norm < 1e-12:
                    continue
                dx = vx / norm
                dy = vy / norm
                step_x = vx / fsteps
                step_y = vy / fsteps
                total = np.float32(0.0)
                count = 0
                fails = 0
                for s in range(n_samples):
                    fs = np.float32(s)
                    lx = xa + fs * step_x
                    ly = ya + fs * step_y
                    # the seed's roundpaf: (int)(v + 0.5), v promoted to double
                    sx = min(max(int(np.float64(lx) + 0.5), 0), map_w - 1)
                    sy = min(max(int(np.float64(ly) + 0.5), 0), map_h - 1)
                    if rep > 0:
                        sy //= rep
                        sx //= rep
                        vpx = pafs[chx, sy, sx]
                        vpy = pafs[chy, sy, sx]
                    else:  # interpolate from the low-res map (written out: no call overhead)
                        vpx = np.float32(0.0)
                        vpy = np.float32(0.0)
                        for i in range(uy_lo[sy], uy_hi[sy] + 1):
                            row_x = np.float32(0.0)
                            row_y = np.float32(0.0)
                            for j in range(ux_lo[sx], ux_hi[sx] + 1):
                                row_x += ux[sx, j] * pafs[chx, i, j]
                                row_y += ux[sx, j] * pafs[chy, i, j]
                            vpx += uy[sy, i] * row_x
                            vpy += uy[sy, i] * row_y
                    score = dx * vpx + dy * vpy
                    total += score
                    if score > paf_thr:
                        count += 1
                    else:
                        fails += 1
                        if fails > max_fails:  # can no longer reach min_count: rejected
                            break
                if count < min_count:
                    continue
                mean = total / fsteps
                penalty = min(0.0, length_ratio * map_h / np.float64(norm) - 1.0)
                crit2 = np.float32(np.float64(mean) + penalty)
                if crit2 > 0:
                    cand_a[n_cand] = ia
                    cand_b[n_cand] = ib
                    cand_s[n_cand] = crit2
                    n_cand += 1
        # Descending by score, stable, as std::sort for up to 16 elements (beyond, the seed's
        # order of equal scores is unspecified).
        order = _argsort_desc(cand_s, n_cand)
        used_a = np.zeros(na, dtype=np.bool_)
        used_b = np.zeros(nb, dtype=np.bool_)
        for k in order:
            ia = cand_a[k]
            ib = cand_b[k]
            if used_a[ia] or used_b[ib]:
                continue
            used_a[ia] = True
            used_b[ib] = True
            conn_c1[n_conn] = a0 + ia
            conn_c2[n_conn] = b0 + ib
            conn_s[n_conn] = cand_s[k]
            n_conn += 1
    conn_start[n_limbs] = n_conn

    # ---- people: rows of 18 peak ids (float32, -1 = none), score sum, part count ----
    sub = np.full((max(n_conn, 1), NUM_PARTS + 2), -1.0, dtype=np.float32)
    n_sub = 0
    i_score = NUM_PARTS
    i_count = NUM_PARTS + 1
    for li in range(n_limbs):
        p1 = limbs[li, 0]
        p2 = limbs[li, 1]
        for k in range(conn_start[li], conn_start[li + 1]):
            c1 = conn_c1[k]
            c2 = conn_c2[k]
            cs = conn_s[k]
            found = 0
            s1 = 0
            s2 = 0
            for s in range(n_sub):
                if sub[s, p1] == c1 or sub[s, p2] == c2:
                    if found == 0:
                        s1 = s
                    if found == 1:
                        s2 = s
                    found += 1
            if found == 1:
                if sub[s1, p2] != c2:
                    sub[s1, p2] = c2
                    sub[s1, i_count] += 1
                    sub[s1, i_score] += pscore[c2] + cs
            elif found == 2:
                shared = False
                if merge:
                    for q in range(NUM_PARTS):
                        if sub[s1, q] > 0 and sub[s2, q] > 0:  # the seed's "> 0" (not ">= 0")
                            shared = True
                if merge and not shared:
                    for q in range(NUM_PARTS):
                        sub[s1, q] += sub[s2, q] + 1
                    sub[s1, i_count] += sub[s2, i_count]
                    sub[s1, i_score] += sub[s2, i_score]
                    sub[s1, i_score] += cs
                    for s in range(s2, n_sub - 1):
                        sub[s, :] = sub[s + 1, :]
                    n_sub -= 1
                else:
                    sub[s1, p2] = c2
                    sub[s1, i_count] += 1
                    sub[s1, i_score] += pscore[c2] + cs
            elif found == 0 and li < n_start:
                sub[n_sub, :] = -1.0
                sub[n_sub, p1] = c1
                sub[n_sub, p2] = c2
                sub[n_sub, i_count] = 2
                sub[n_sub, i_score] = pscore[c1] + pscore[c2] + cs
                n_sub += 1

    # ---- filters; the seed's row order ----
    keep = np.zeros(n_sub, dtype=np.bool_)
    n_keep = 0
    for s in range(n_sub):
        person_score = sub[s, i_score] / sub[s, i_count]
        if not (sub[s, i_count] < min_parts or person_score < min_score):
            keep[s] = True
            n_keep += 1
    cids = np.full((n_keep, NUM_PARTS), -1, dtype=np.int64)
    scores = np.empty(n_keep, dtype=np.float32)
    r = 0
    for s in range(n_sub):
        if keep[s]:
            for q in range(NUM_PARTS):
                cids[r, q] = int(sub[s, q])
            scores[r] = sub[s, i_score] / sub[s, i_count]
            r += 1
    return cids, scores


# --------------------------------------------------------------------------------------------
# Decoder
# --------------------------------------------------------------------------------------------

_LIMBS = _readonly(np.asarray(LIMBS, dtype=np.int64))
_LIMB_PAFS = _readonly(np.asarray(LIMB_PAF_CHANNELS, dtype=np.int64))


def _as_maps(a: np.ndarray, name: str, channels: tuple[int, ...]) -> np.ndarray:
    """Validated, contiguous float32 copy/view: non-finite values -> 0, huge ones clipped."""
    arr = np.asarray(a)
    if arr.ndim != 3 or arr.shape[0] not in channels or arr.shape[1] < 1 or arr.shape[2] < 1:
        want = " or ".join(str(c) for c in channels)
        raise ValueError(
            f"{name} must be a channel-first array of shape ({want}, h, w), got shape "
            f"{arr.shape} (network output is NHWC: transpose one image's maps to CHW)"
        )
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    with np.errstate(over="ignore", invalid="ignore"):  # float64 beyond float32 -> inf
        arr = np.ascontiguousarray(arr, dtype=np.float32)
    peak = np.abs(arr).max()
    if not peak <= _MAX_ABS:  # also NaN
        arr = np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)
        np.clip(arr, -_MAX_ABS, _MAX_ABS, out=arr)
    return arr


_NECK, _SHOULDERS = PARTS.index("Neck"), (PARTS.index("RShoulder"), PARTS.index("LShoulder"))


def attach_pieces(
    keypoints: np.ndarray, scores: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """Join each neck-less person to the person whose neck is within `radius` (map pixels) of
    its shoulder and who has none of its parts; the joined score is the part-weighted mean."""
    kp, sc = keypoints.copy(), scores.copy()
    present = kp[:, :, 2] > 0
    alive = np.ones(len(sc), dtype=bool)
    for piece in np.flatnonzero(~present[:, _NECK]):
        has = present[piece]
        shoulders = [s for s in _SHOULDERS if has[s]]
        # hosts: alive, with a neck and none of the piece's parts (never the piece itself)
        hosts = np.flatnonzero(alive & present[:, _NECK] & ~(present & has).any(axis=1))
        if not shoulders or hosts.size == 0:
            continue
        diff = kp[hosts, _NECK, None, :2] - kp[piece, shoulders, :2]  # (hosts, shoulders, 2)
        d = np.hypot(diff[..., 0], diff[..., 1]).ravel()
        if not d.min() <= radius:
            continue
        # the last (host, shoulder) at the smallest distance, as a scan with "<=" finds it
        best = int(hosts[(d.size - 1 - int(np.argmin(d[::-1]))) // len(shoulders)])
        n_host, n_piece = int(present[best].sum()), int(has.sum())
        sc[best] = (sc[best] * n_host + sc[piece] * n_piece) / (n_host + n_piece)
        kp[best, has] = kp[piece, has]
        present[best] |= has
        alive[piece] = False
    return kp[alive], sc[alive]


class Decoder:
    """A decoder bound to one DecodeParams; caches per-map-size operators; thread-safe."""

    def __init__(self, params: DecodeParams | None = None) -> None:
        """Create a decoder (params default to the seed's settings)."""
        self._params = DecodeParams() if params is None else params
        p = self._params
        self._kernel = seed_kernel_1d(p.smooth_size, p.smooth_nsig) if p.smooth == "seed" else None
        self._ops: dict[tuple[int, int], _Operators] = {}

    @property
    def params(self) -> DecodeParams:
        """The decoder's settings."""
        return self._params

    def map_size(self, h: int, w: int) -> tuple[int, int]:
        """(width, height) of the upsampled map for low-res maps of h rows and w columns."""
        r = self._params.upsample
        return max(int(w * r), 1), max(int(h * r), 1)

    def _build_operators(self, h: int, w: int, out_h: int, out_w: int) -> _Operators:
        p = self._params
        ay = _build_axis(h, out_h, p, self._kernel)
        ax = _build_axis(w, out_w, p, self._kernel)
        replicate = 0  # integer area factor: upsampling is pixel replication
        if p.upsample_method == "area" or (out_h == h and out_w == w):
            if out_h % h == 0 and out_w % w == 0 and out_h // h == out_w // w:
                replicate = out_h // h
        lowres = None
        if p.smooth == "none" and p.upsample_method == "area" and out_h * out_w > h * w:
            # Area upsampling without smoothing turns every low-res pixel into a plateau wider
            # than the NMS window: find the peaks on the low-res map instead.
            lowres = self._build_operators(h, w, h, w)
        bound = p.heat_threshold / (ay.gain * ax.gain) * (1.0 - _BOUND_MARGIN)
        return _Operators(
            y=ay, x=ax, replicate=replicate, bound=bound, nonneg=ay.nonneg and ax.nonneg,
            lowres=lowres,
        )

    def _operators(self, h: int, w: int) -> _Operators:
        key = (h, w)
        ops = self._ops.get(key)
        if ops is not None:
            return ops
        out_w, out_h = self.map_size(h, w)
        ops = self._build_operators(h, w, out_h, out_w)
        if len(self._ops) >= _MAX_CACHED_SIZES:
            self._ops = {}
        # setdefault is atomic under the GIL: concurrent builders agree on one instance.
        return self._ops.setdefault(key, ops)

    def _peaks(self, heat: np.ndarray, ops: _Operators) -> Peaks:
        p = self._params
        search = ops if ops.lowres is None else ops.lowres
        ny, nx = search.y.nms, search.x.nms
        uy, ux = search.y.up, search.x.up
        chans, fx, fy, scores = _find_peaks(
            heat, NUM_PARTS, ny.mat, ny.lo, ny.hi, ny.clo, ny.chi,
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

    def find_peaks(self, heatmaps: np.ndarray) -> Peaks:
        """Part candidates: peaks of the (smoothed) upsampled heatmaps, as the seed finds them."""
        heat = _as_maps(heatmaps, "heatmaps", (NUM_PARTS, NUM_HEATMAPS))
        return self._peaks(heat, self._operators(heat.shape[1], heat.shape[2]))

    def __call__(self, heatmaps: np.ndarray, pafs: np.ndarray) -> Poses:
        """Decode one image's maps: heatmaps (19, h, w) and pafs (38, h, w) -> people."""
        heat = _as_maps(heatmaps, "heatmaps", (NUM_PARTS, NUM_HEATMAPS))
        paf = _as_maps(pafs, "pafs", (NUM_PAFS,))
        if paf.shape[1:] != heat.shape[1:]:
            raise ValueError(
                f"heatmaps and pafs must have the same (h, w), got {heat.shape[1:]} and "
                f"{paf.shape[1:]}"
            )
        p = self._params
        ops = self._operators(heat.shape[1], heat.shape[2])
        peaks = self._peaks(heat, ops)
        map_w, map_h = peaks.map_size
        counts = np.bincount(peaks.parts, minlength=NUM_PARTS)
        part_start = np.zeros(NUM_PARTS + 1, dtype=np.int64)
        np.cumsum(counts, out=part_start[1:])
        rep = ops.replicate
        uy, ux = ops.y.up, ops.x.up
        if rep == 0:
            # Interpolating each PAF sample costs about as much as upsampling ~100 pixels:
            # upsample the PAFs once when there are many samples.
            pairs = int((counts[_LIMBS[:, 0]] * counts[_LIMBS[:, 1]]).sum())
            if pairs * p.paf_samples > map_h * map_w // 2:
                paf = _upsample(paf, uy.mat, uy.lo, uy.hi, ux.mat_t, ux.lo, ux.hi, ux.clo, ux.chi)
                rep = 1
        cids, scores = _group(
            peaks.xs, peaks.ys, peaks.scores, part_start, paf, rep,
            uy.mat, uy.lo, uy.hi, ux.mat, ux.lo, ux.hi, map_h, map_w,
            _LIMBS, _LIMB_PAFS, NUM_LIMBS_STARTING_PERSON,
            np.float32(p.paf_threshold), p.paf_samples, p.paf_min_count,
            float(p.limb_length_ratio), p.min_parts, np.float32(p.min_score), p.merge_disjoint,
        )
        keypoints = np.zeros((cids.shape[0], NUM_PARTS, 3), dtype=np.float32)
        present = cids >= 0
        idx = cids[present]
        keypoints[present] = np.stack([peaks.xs[idx], peaks.ys[idx], peaks.scores[idx]], axis=-1)
        if p.attach_cells > 0 and len(scores) > 1:
            radius = p.attach_cells * map_w / heat.shape[2]
            keypoints, scores = attach_pieces(keypoints, scores, radius)
        return Poses(keypoints=keypoints, scores=scores, map_size=(map_w, map_h))

    decode = __call__


def decode(
    heatmaps: np.ndarray, pafs: np.ndarray, params: DecodeParams = DecodeParams()
) -> Poses:
    """Decode one image's maps (19, h, w) and (38, h, w) into people (see Decoder to reuse)."""
    return Decoder(params)(heatmaps, pafs)
