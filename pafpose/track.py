"""Person identities across frames (OKS matching, Hungarian assignment) and One-Euro smoothing.

How a frame is matched to the tracks:

* Each track remembers where each of its keypoints was last seen (parts missing from a match
  move along with the body) and a velocity (the median displacement of its parts between
  matches, per second, averaged). Its keypoints are predicted to the new frame's time by it.
* Similarity is the Object Keypoint Similarity (COCO's OKS, its per-part sigmas times
  ``tolerance``; parts absent from COCO take a neighbour's sigma: the neck and chest the
  shoulders', the mid-hip the hips', the feet the ankles', MPI's head the ears') between a
  detection and
  a track's predicted keypoints, over the parts both have, with the track's keypoint box area as
  the scale. Fewer than ``min_common`` shared parts count as missing ones, so two parts cannot
  make a match alone.
* The assignment maximising the total similarity is found with the Hungarian method (the
  optimal one, not greedy: greedy matching gives a crossing pair to whichever pair scores highest
  first, and then the other one often has no good partner left); pairs below ``min_oks`` are
  not matched. A small exact solver lives here, so SciPy is not needed.
* Rules: an unmatched detection with at least ``min_parts`` parts starts a new track, which
  gets its id once matched in ``min_hits`` frames in a row (a miss before that ends it; in the
  first frames of a run ids come at once); a track unmatched for more than ``max_lost``
  seconds is forgotten; ids are never reused. A split-off piece of a person (a detection inside
  another one's box, made of parts that one lacks: an arm and an ear the grouping left alone)
  gets no id and matches nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .human import Human
from .skeleton import OPENPOSE_18, Skeleton

#: OKS sigma of every part name of the skeletons: COCO's per-keypoint sigmas; parts COCO lacks
#: take a neighbour's (neck and chest: the shoulders', mid-hip: the hips', the feet: the
#: ankles', MPI's head: the ears').
PART_SIGMAS: dict[str, float] = {
    "Nose": 0.026, "REye": 0.025, "LEye": 0.025, "REar": 0.035, "LEar": 0.035,
    "RShoulder": 0.079, "LShoulder": 0.079, "RElbow": 0.072, "LElbow": 0.072,
    "RWrist": 0.062, "LWrist": 0.062, "RHip": 0.107, "LHip": 0.107, "RKnee": 0.087,
    "LKnee": 0.087, "RAnkle": 0.089, "LAnkle": 0.089,
    "Neck": 0.079, "Chest": 0.079, "MidHip": 0.107, "Head": 0.035,
    "LBigToe": 0.089, "LSmallToe": 0.089, "LHeel": 0.089,
    "RBigToe": 0.089, "RSmallToe": 0.089, "RHeel": 0.089,
}


def oks_sigmas(skeleton: Skeleton) -> np.ndarray:
    """The OKS sigma of each part of a skeleton (PART_SIGMAS; 0.079 for a name it lacks)."""
    return np.array([PART_SIGMAS.get(name, 0.079) for name in skeleton.parts], np.float64)


#: OKS sigmas of the OpenPose-18 parts.
OKS_SIGMAS_18 = oks_sigmas(OPENPOSE_18)


def linear_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost one-to-one assignment of a rectangular cost matrix (the Hungarian method).

    Returns (rows, cols) of the min(n, m) assigned pairs, sorted by row, as
    ``scipy.optimize.linear_sum_assignment`` does. O(n^2 m) with potentials and shortest
    augmenting paths; n and m are the people in a frame, so tens at most.
    """
    a = np.asarray(cost, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError("cost must be a 2-D matrix")
    if not np.all(np.isfinite(a)):
        raise ValueError("cost must be finite")
    transposed = a.shape[0] > a.shape[1]
    if transposed:
        a = a.T
    n, m = a.shape
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy()
    u = np.zeros(n + 1)
    v = np.zeros(m + 1)
    match = np.zeros(m + 1, dtype=np.int64)  # match[j] = row (1-based) assigned to column j
    way = np.zeros(m + 1, dtype=np.int64)
    for i in range(1, n + 1):
        match[0] = i
        j0 = 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = match[j0]
            free = ~used[1:]
            cur = a[i0 - 1] - u[i0] - v[1:]
            better = free & (cur < minv[1:])
            minv[1:][better] = cur[better]
            way[1:][better] = j0
            candidates = np.where(free, minv[1:], np.inf)
            j1 = int(np.argmin(candidates)) + 1
            delta = candidates[j1 - 1]
            u[match[used]] += delta
            v[used] -= delta
            minv[~used] -= delta
            j0 = j1
            if match[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            match[j0] = match[j1]
            j0 = j1
    cols = np.nonzero(match[1:])[0]
    rows = match[1:][cols] - 1
    if transposed:
        rows, cols = cols, rows
    order = np.argsort(rows)
    return rows[order].astype(np.int64), cols[order].astype(np.int64)


def keypoint_box_area(keypoints: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Area of the box around the valid keypoints of each person: (N, K, 2+), (N, K) -> (N,)."""
    xy = np.asarray(keypoints)[..., :2]
    big = np.where(valid[..., None], xy, np.inf)
    small = np.where(valid[..., None], xy, -np.inf)
    lo, hi = big.min(axis=1), small.max(axis=1)
    size = np.where(np.isfinite(hi - lo), hi - lo, 0.0)
    return size[:, 0] * size[:, 1]


def oks_matrix(
    detections: np.ndarray,
    references: np.ndarray,
    ref_valid: np.ndarray | None = None,
    areas: np.ndarray | None = None,
    min_area: float = 32.0 * 32.0,
    min_common: int = 3,
    sigmas: np.ndarray = OKS_SIGMAS_18,
) -> np.ndarray:
    """OKS between detections (N, parts, 3) and references (M, parts, 2 or 3): an (N, M)
    matrix (`sigmas`: one per part, OpenPose-18's by default).

    A part counts when its score is > 0 (or `ref_valid` says so for the references). The scale
    is each reference's keypoint box area (at least `min_area`); the mean runs over the parts
    both have, divided by at least `min_common`.
    """
    det = np.asarray(detections, dtype=np.float64)
    ref = np.asarray(references, dtype=np.float64)
    n, m = len(det), len(ref)
    if n == 0 or m == 0:
        return np.zeros((n, m))
    det_valid = det[:, :, 2] > 0
    if ref_valid is None:
        ref_valid = ref[:, :, 2] > 0
    if areas is None:
        areas = keypoint_box_area(ref, ref_valid)
    areas = np.maximum(np.asarray(areas, dtype=np.float64), min_area)
    d2 = ((det[:, None, :, :2] - ref[None, :, :, :2]) ** 2).sum(axis=-1)  # (N, M, parts)
    variances = (2.0 * np.asarray(sigmas, np.float64)) ** 2
    e = d2 / (2.0 * areas[None, :, None] * variances[None, None, :])
    common = det_valid[:, None, :] & ref_valid[None, :, :]
    total = np.where(common, np.exp(-e), 0.0).sum(axis=-1)
    return total / np.maximum(common.sum(axis=-1), max(1, min_common))


def _is_fragment(i: int, dets: np.ndarray, share: float) -> bool:
    """Whether detection i is a split-off piece of another person: its parts lie mostly inside
    the box of a detection with more parts, and are mostly parts that detection lacks."""
    vis = dets[:, :, 2] > 0
    counts = vis.sum(axis=1)
    xy = dets[i, vis[i], :2]
    for j in np.nonzero(counts > counts[i])[0]:
        if (vis[i] & vis[j]).sum() > max(1, counts[i] // 4):
            continue  # the same parts twice: another person, not a piece of this one
        lo, hi = dets[j, vis[j], :2].min(axis=0), dets[j, vis[j], :2].max(axis=0)
        pad = 0.1 * (hi - lo) + 1.0
        inside = np.all((xy >= lo - pad) & (xy <= hi + pad), axis=1)
        if inside.mean() >= share:
            return True
    return False


class OneEuroFilter:
    """The One-Euro filter (Casiez et al., CHI 2012) over K points at once, time-aware.

    The cutoff rises with speed: ``min_cutoff + beta * speed``, the speed measured in `scale`
    units per second (the tracker passes the person's size, so beta does not depend on the
    resolution). Points marked invalid pass through and restart their filter when they return.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.5, d_cutoff: float = 1.0) -> None:
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError("One-Euro cutoffs must be positive and beta non-negative")
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.x: np.ndarray | None = None
        self.dx: np.ndarray | None = None
        self.valid: np.ndarray | None = None
        self.t = 0.0

    @staticmethod
    def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
        tau = 1.0 / (2.0 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(
        self, x: np.ndarray, t: float, valid: np.ndarray | None = None, scale: float = 1.0
    ) -> np.ndarray:
        """Filter points x (K, D) observed at time t (seconds); return the smoothed (K, D)."""
        x = np.asarray(x, dtype=np.float64)
        valid = np.ones(len(x), bool) if valid is None else np.asarray(valid, bool)
        if self.x is None or self.x.shape != x.shape:
            self.x, self.dx, self.valid, self.t = x.copy(), np.zeros_like(x), valid.copy(), t
            return x.copy()
        dt = t - self.t
        if dt <= 0:  # the same instant again: nothing new to learn
            return np.where(valid[:, None] & self.valid[:, None], self.x, x)
        fresh = valid & ~self.valid
        prev_x = np.where(fresh[:, None], x, self.x)
        prev_dx = np.where(fresh[:, None], 0.0, self.dx)
        a_d = self._alpha(self.d_cutoff, dt)
        dx = a_d * (x - prev_x) / dt + (1 - a_d) * prev_dx
        speed = np.linalg.norm(dx, axis=-1) / max(scale, 1e-9)
        a = self._alpha(self.min_cutoff + self.beta * speed, dt)[:, None]
        out = a * x + (1 - a) * prev_x
        keep = valid[:, None]
        self.x = np.where(keep, out, self.x)
        self.dx = np.where(keep, dx, self.dx)
        self.valid = valid.copy()
        self.t = t
        return np.where(keep, out, x)


@dataclass(frozen=True)
class Person:
    """A person in a frame: a track id (None when not tracked) and the Human."""

    id: int | None
    human: Human

    def to_dict(self) -> dict[str, Any]:
        """The Human's JSON description with the id first."""
        return {"id": self.id, **self.human.to_dict()}


@dataclass
class Track:
    """One identity: where its keypoints were last seen, its velocity, its history."""

    id: int | None  # None while tentative (seen in fewer than min_hits frames in a row)
    keypoints: np.ndarray  # (parts, 2) last seen positions (pixels)
    seen: np.ndarray  # (parts,) time each keypoint was last seen; -inf = never
    first_time: float
    last_time: float
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))  # pixels / second
    hits: int = 1
    smoother: OneEuroFilter | None = None


@dataclass(frozen=True)
class TrackerParams:
    """Tracker settings (seconds are the source's timestamps)."""

    #: Least OKS for a detection to continue a track.
    min_oks: float = 0.2
    #: OKS's per-part tolerances are multiplied by this (COCO's are for localisation errors;
    #: between frames a person also moves and the detector jitters).
    tolerance: float = 2.0
    #: Shared parts below this count as missing ones in the OKS mean.
    min_common: int = 3
    #: A track unmatched for longer than this (seconds) is forgotten.
    max_lost: float = 1.5
    #: Prediction by velocity reaches at most this far (seconds) ahead of the last match.
    max_predict: float = 0.5
    #: A new track needs a detection with at least this many parts.
    min_parts: int = 4
    #: A new track gets its id once matched in this many frames in a row (until then its
    #: people have no id, and a miss ends it): one-frame false detections in a crowd take no
    #: id. In the first min_hits frames of a run, tracks get their ids at once.
    min_hits: int = 2
    #: A detection with at least this share of its parts inside the box (10 % larger) of
    #: another detection with more parts, which lacks those parts, is a split-off fragment of
    #: that person (an arm and an ear, typically): it gets no id; > 1 disables the rule.
    fragment_inside: float = 0.75
    #: Weight of the newest velocity measurement (0..1, exponential average).
    velocity_weight: float = 0.5
    #: One-Euro parameters when smoothing: (min_cutoff Hz, beta per person size, d_cutoff Hz).
    one_euro: tuple[float, float, float] = (1.0, 0.5, 1.0)


class Tracker:
    """Assigns persistent ids to the people of successive frames; optionally smooths keypoints."""

    def __init__(self, params: TrackerParams | None = None, smooth: bool = False,
                 **overrides: Any) -> None:
        self.params = replace(params or TrackerParams(), **overrides)
        self.smooth = smooth
        self.tracks: list[Track] = []
        self.next_id = 1
        self.frames = 0
        self._last_time: float | None = None
        #: The skeleton of the people tracked (taken from the first detections).
        self.skeleton: Skeleton = OPENPOSE_18
        self._sigmas = OKS_SIGMAS_18

    @property
    def ids_created(self) -> int:
        """How many ids were handed out so far."""
        return self.next_id - 1

    def reset(self) -> None:
        """Forget every track (ids keep counting up)."""
        self.tracks.clear()
        self._last_time = None

    def _predict(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        kp = np.zeros((len(self.tracks), self.skeleton.num_parts, 2))
        valid = np.zeros((len(self.tracks), self.skeleton.num_parts), bool)
        for k, tr in enumerate(self.tracks):
            age = t - tr.seen
            valid[k] = age <= p.max_lost
            ahead = np.clip(t - tr.last_time, 0.0, p.max_predict)
            kp[k] = tr.keypoints + tr.velocity * ahead
        return kp, valid

    def update(self, humans: Sequence[Human], timestamp: float) -> list[Person]:
        """Match this frame's humans (seen at `timestamp` seconds) to the tracks; ids in order."""
        p = self.params
        t = float(timestamp)
        if self._last_time is not None and t < self._last_time:
            raise ValueError("timestamps must not decrease")
        self._last_time = t
        self.frames += 1
        if humans and humans[0].skeleton != self.skeleton:  # another model: start afresh
            self.tracks.clear()
            self.skeleton, self._sigmas = humans[0].skeleton, oks_sigmas(humans[0].skeleton)
        dets = (np.stack([h.keypoints for h in humans]).astype(np.float64) if humans
                else np.zeros((0, self.skeleton.num_parts, 3)))
        fragment = [_is_fragment(i, dets, p.fragment_inside) for i in range(len(dets))]
        whole = [i for i in range(len(dets)) if not fragment[i]]
        assigned: list[Track | None] = [None] * len(humans)
        if self.tracks and whole:
            pred, valid = self._predict(t)
            areas = keypoint_box_area(pred, valid) * p.tolerance**2
            sim = oks_matrix(dets[whole], pred, valid, areas,
                             min_area=(32.0 * p.tolerance) ** 2, min_common=p.min_common,
                             sigmas=self._sigmas)
            cost = np.where(sim >= p.min_oks, 1.0 - sim, 2.0)
            for r, k in zip(*linear_assignment(cost), strict=True):
                if sim[r, k] >= p.min_oks:
                    assigned[whole[r]] = self.tracks[k]
        people: list[Person] = []
        for i, human in enumerate(humans):
            track = assigned[i]
            vis = dets[i, :, 2] > 0
            if track is None:
                if fragment[i] or int(vis.sum()) < p.min_parts:
                    people.append(Person(None, human))
                    continue
                track = self._new_track(dets[i], vis, t)
            else:
                self._continue(track, dets[i], vis, t)
            people.append(Person(track.id, self._smoothed(track, human, vis, t)))
        self.tracks = [tr for tr in self.tracks if t - tr.last_time <= p.max_lost
                       and (tr.id is not None or tr.last_time == t)]
        return people

    def _new_track(self, det: np.ndarray, vis: np.ndarray, t: float) -> Track:
        seen = np.where(vis, t, -np.inf)
        track = Track(None, det[:, :2].copy(), seen, t, t)
        if self.smooth:
            track.smoother = OneEuroFilter(*self.params.one_euro)
        self._confirm(track)
        self.tracks.append(track)
        return track

    def _confirm(self, track: Track) -> None:
        """Give a tentative track its id once it has enough hits (at once early in a run)."""
        if track.id is None and (track.hits >= self.params.min_hits
                                 or self.frames <= self.params.min_hits):
            track.id = self.next_id
            self.next_id += 1

    def _continue(self, track: Track, det: np.ndarray, vis: np.ndarray, t: float) -> None:
        dt = t - track.last_time
        common = vis & np.isfinite(track.seen)
        if common.any():  # the body's move: the median over the parts seen before and now
            shift = np.median(det[common, :2] - track.keypoints[common], axis=0)
            if dt > 0:
                w = self.params.velocity_weight
                track.velocity = w * shift / dt + (1 - w) * track.velocity
        else:
            shift = track.velocity * min(dt, self.params.max_predict)
        track.keypoints[~vis] += shift  # parts not seen now travel with the body
        track.keypoints[vis] = det[vis, :2]
        track.seen[vis] = t
        track.last_time = t
        track.hits += 1
        self._confirm(track)

    def _smoothed(self, track: Track, human: Human, vis: np.ndarray, t: float) -> Human:
        if track.smoother is None:
            return human
        area = float(keypoint_box_area(human.keypoints[None], vis[None])[0])
        scale = max(math.sqrt(area), 1.0)
        xy = track.smoother(human.keypoints[:, :2], t, vis, scale)
        kp = human.keypoints.copy()
        kp[vis, :2] = xy[vis]
        return Human(kp.astype(np.float32), human.score, human.image_size, human.skeleton)


@dataclass(frozen=True)
class TrackStats:
    """Identity figures over a run: ids, their lengths in frames, people left without an id."""

    frames: int
    detections: int
    ids: int
    mean_track_length: float
    median_track_length: float
    tracks_over_10_frames: int
    untracked: int

    def to_dict(self) -> dict[str, float | int]:
        """The figures as a plain dict."""
        return dict(self.__dict__)


def track_stats(frames: Iterable[Sequence[Person]]) -> TrackStats:
    """Summarise the people of successive frames: ids created, mean frames per id, ..."""
    lengths: dict[int, int] = {}
    n_frames = detections = untracked = 0
    for people in frames:
        n_frames += 1
        for person in people:
            detections += 1
            if person.id is None:
                untracked += 1
            else:
                lengths[person.id] = lengths.get(person.id, 0) + 1
    values = np.array(list(lengths.values()), dtype=np.float64)
    return TrackStats(
        frames=n_frames,
        detections=detections,
        ids=len(lengths),
        mean_track_length=float(values.mean()) if len(values) else 0.0,
        median_track_length=float(np.median(values)) if len(values) else 0.0,
        tracks_over_10_frames=int((values > 10).sum()),
        untracked=untracked,
    )
