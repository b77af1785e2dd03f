"""Part candidates -> people: limb scoring along the PAFs, greedy matching, people assembly.

The grouping is a compiled loop that follows the seed's C++ (``pafprocess.cpp``) step by step,
including its float32 arithmetic and quirks. PAFs are not upsampled for integer area factors:
the sample at upsampled pixel (x, y) is ``pafs[c, y // r, x // r]``. Other methods interpolate
each sample from the low-res map, or upsample the PAFs once when there are many samples.
The skeleton comes in as data (limb and PAF channel arrays): no part or limb count is assumed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..jit import jit
from ..skeleton import OPENPOSE_18, Skeleton
from .operators import Operators, readonly, upsample
from .params import DecodeParams, Peaks, Poses
from .sorting import argsort_desc

__all__ = ["Layout", "attach_pieces", "group", "group_people"]


@dataclass(frozen=True)
class Layout:
    """A skeleton as the compiled grouping reads it (read-only arrays)."""

    skeleton: Skeleton
    limbs: np.ndarray  # (limbs, 2) int64 part pairs
    limb_pafs: np.ndarray  # (limbs, 2) int64 PAF channels (x, y)

    @staticmethod
    def of(skeleton: Skeleton) -> Layout:
        """The arrays of a skeleton."""
        return Layout(
            skeleton,
            readonly(np.asarray(skeleton.limbs, dtype=np.int64).reshape(-1, 2)),
            readonly(np.asarray(skeleton.limb_pafs, dtype=np.int64).reshape(-1, 2)),
        )


def group(
    peaks: Peaks, paf: np.ndarray, ops: Operators, params: DecodeParams, layout: Layout,
    low_w: int,
) -> Poses:
    """People from the peaks and the (validated, low-res) PAFs; low_w: width of the low-res maps."""
    p = params
    n_parts = layout.skeleton.num_parts
    map_w, map_h = peaks.map_size
    counts = np.bincount(peaks.parts, minlength=n_parts)
    part_start = np.zeros(n_parts + 1, dtype=np.int64)
    np.cumsum(counts, out=part_start[1:])
    rep = ops.replicate
    uy, ux = ops.y.up, ops.x.up
    if rep == 0:
        # Interpolating each PAF sample costs about as much as upsampling ~100 pixels:
        # upsample the PAFs once when there are many samples.
        limbs = layout.limbs
        pairs = int((counts[limbs[:, 0]] * counts[limbs[:, 1]]).sum())
        if pairs * p.paf_samples > map_h * map_w // 2:
            paf = upsample(paf, uy.mat, uy.lo, uy.hi, ux.mat_t, ux.lo, ux.hi, ux.clo, ux.chi)
            rep = 1
    cids, scores = group_people(
        peaks.xs, peaks.ys, peaks.scores, part_start, paf, rep,
        uy.mat, uy.lo, uy.hi, ux.mat, ux.lo, ux.hi, map_h, map_w,
        layout.limbs, layout.limb_pafs, layout.skeleton.limbs_starting_person,
        np.float32(p.paf_threshold), p.paf_samples, p.paf_min_count,
        float(p.limb_length_ratio), p.min_parts, np.float32(p.min_score), p.merge_disjoint,
    )
    keypoints = np.zeros((cids.shape[0], n_parts, 3), dtype=np.float32)
    present = cids >= 0
    idx = cids[present]
    keypoints[present] = np.stack([peaks.xs[idx], peaks.ys[idx], peaks.scores[idx]], axis=-1)
    if p.attach_cells > 0 and len(scores) > 1:
        radius = p.attach_cells * map_w / low_w
        keypoints, scores = attach_pieces(keypoints, scores, radius, layout.skeleton)
    return Poses(keypoints=keypoints, scores=scores, map_size=(map_w, map_h))


def attach_pieces(
    keypoints: np.ndarray, scores: np.ndarray, radius: float, skeleton: Skeleton = OPENPOSE_18
) -> tuple[np.ndarray, np.ndarray]:
    """Join each neck-less person to the person whose neck is within `radius` (map pixels) of
    its shoulder and who has none of its parts; the joined score is the part-weighted mean."""
    neck = skeleton.index("Neck")
    shoulders_of = (skeleton.index("RShoulder"), skeleton.index("LShoulder"))
    kp, sc = keypoints.copy(), scores.copy()
    present = kp[:, :, 2] > 0
    alive = np.ones(len(sc), dtype=bool)
    for piece in np.flatnonzero(~present[:, neck]):
        has = present[piece]
        shoulders = [s for s in shoulders_of if has[s]]
        # hosts: alive, with a neck and none of the piece's parts (never the piece itself)
        hosts = np.flatnonzero(alive & present[:, neck] & ~(present & has).any(axis=1))
        if not shoulders or hosts.size == 0:
            continue
        diff = kp[hosts, neck, None, :2] - kp[piece, shoulders, :2]  # (hosts, shoulders, 2)
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


# --------------------------------------------------------------------------------------------
# Compiled kernels (numba)
# --------------------------------------------------------------------------------------------


@jit
def group_people(
    px, py, pscore, part_start, pafs, rep, uy, uy_lo, uy_hi, ux, ux_lo, ux_hi,
    map_h, map_w,
    limbs, limb_pafs, n_start, paf_thr, n_samples, min_count,
    length_ratio, min_parts, min_score, merge,
):
    """The seed's pafprocess: limb scoring, greedy matching, people assembly, filtering.

    px, py, pscore: the peaks, ordered by part (part p's are part_start[p]:part_start[p + 1]).
    The PAF at upsampled pixel (x, y) is pafs[c, y // rep, x // rep], or interpolated from
    the low-res pafs with the weights uy, ux if rep == 0. limbs, limb_pafs: (limbs, 2) part
    pairs and PAF channels; only the first n_start limbs may start a person. Returns the peak
    index of every part of every person (-1: none) and the person scores, in the seed's order.
    """
    n_parts = part_start.shape[0] - 1
    conn_c1, conn_c2, conn_s, conn_start = _connections(
        px, py, part_start, pafs, rep, uy, uy_lo, uy_hi, ux, ux_lo, ux_hi, map_h, map_w,
        limbs, limb_pafs, paf_thr, n_samples, min_count, length_ratio,
    )
    sub, n_sub = _assemble(
        conn_c1, conn_c2, conn_s, conn_start, limbs, n_start, pscore, n_parts, merge
    )
    return _keep_people(sub, n_sub, n_parts, min_parts, min_score)


@jit
def _connections(
    px, py, part_start, pafs, rep, uy, uy_lo, uy_hi, ux, ux_lo, ux_hi, map_h, map_w,
    limbs, limb_pafs, paf_thr, n_samples, min_count, length_ratio,
):
    """Limb by limb: candidates scored along the PAF, then greedy one-to-one matching.

    Returns the connections (peak ids c1, c2 and score), limb li's at
    conn_start[li]:conn_start[li + 1].
    """
    n_limbs = limbs.shape[0]
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
        cand_a, cand_b, cand_s, n_cand = _limb_candidates(
            px, py, a0, na, b0, nb, pafs, limb_pafs[li, 0], limb_pafs[li, 1], rep,
            uy, uy_lo, uy_hi, ux, ux_lo, ux_hi, map_h, map_w,
            paf_thr, n_samples, min_count, length_ratio,
        )
        n_conn = _match(
            cand_a, cand_b, cand_s, n_cand, na, nb, a0, b0, conn_c1, conn_c2, conn_s, n_conn
        )
    conn_start[n_limbs] = n_conn
    return conn_c1, conn_c2, conn_s, conn_start


@jit
def _limb_candidates(
    px, py, a0, na, b0, nb, pafs, chx, chy, rep, uy, uy_lo, uy_hi, ux, ux_lo, ux_hi,
    map_h, map_w, paf_thr, n_samples, min_count, length_ratio,
):
    """The pairs (a, b) of one limb's peaks that pass the seed's tests, with their scores, in
    enumeration order: at least min_count of n_samples samples along the segment with
    PAF . unit > paf_thr, and a score = their mean + min(0, length_ratio * map_h / length - 1)
    above 0. (One function with the sample loop inside: a call per pair costs ~50 ns.)
    """
    fsteps = np.float32(n_samples)
    max_fails = n_samples - min_count
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
    return cand_a, cand_b, cand_s, n_cand


@jit
def _match(cand_a, cand_b, cand_s, n_cand, na, nb, a0, b0, conn_c1, conn_c2, conn_s, n_conn):
    """Greedy one-to-one matching of one limb's candidates, best score first; the kept ones
    are appended to conn_* from n_conn on. Returns the new connection count."""
    order = argsort_desc(cand_s, n_cand)
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
    return n_conn


@jit
def _assemble(conn_c1, conn_c2, conn_s, conn_start, limbs, n_start, pscore, n_parts, merge):
    """People from the connections, limb by limb, as the seed assembles them.

    Returns the rows (n_parts peak ids as float32, -1 = none, then score sum and part count)
    and their number.
    """
    n_limbs = limbs.shape[0]
    n_conn = conn_start[n_limbs]
    sub = np.full((max(n_conn, 1), n_parts + 2), -1.0, dtype=np.float32)
    n_sub = 0
    i_score = n_parts
    i_count = n_parts + 1
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
                    for q in range(n_parts):
                        if sub[s1, q] > 0 and sub[s2, q] > 0:  # the seed's "> 0" (not ">= 0")
                            shared = True
                if merge and not shared:
                    for q in range(n_parts):
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
    return sub, n_sub


@jit
def _keep_people(sub, n_sub, n_parts, min_parts, min_score):
    """The people with at least min_parts parts and a score >= min_score, in the seed's row
    order: their peak ids (-1: none) and scores."""
    i_score = n_parts
    i_count = n_parts + 1
    keep = np.zeros(n_sub, dtype=np.bool_)
    n_keep = 0
    for s in range(n_sub):
        person_score = sub[s, i_score] / sub[s, i_count]
        if not (sub[s, i_count] < min_parts or person_score < min_score):
            keep[s] = True
            n_keep += 1
    cids = np.full((n_keep, n_parts), -1, dtype=np.int64)
    scores = np.empty(n_keep, dtype=np.float32)
    r = 0
    for s in range(n_sub):
        if keep[s]:
            for q in range(n_parts):
                cids[r, q] = int(sub[s, q])
            scores[r] = sub[s, i_score] / sub[s, i_count]
            r += 1
    return cids, scores
