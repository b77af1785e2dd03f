"""Tracking: the assignment, OKS, the tracker's rules, One-Euro smoothing; then real footage."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from pafpose.human import Human
from pafpose.skeleton import BODY_25, MPI_15, OPENPOSE_18, Skeleton
from pafpose.track import (
    OneEuroFilter,
    Person,
    Tracker,
    linear_assignment,
    oks_matrix,
    oks_sigmas,
    track_stats,
)
from pafpose.video import iter_poses, open_source

from .conftest import MEDIA, need

# A standing person, OpenPose-18 order, offsets in units of its height, centre at the hips.
_TEMPLATE = np.array([
    [0.0, -0.45], [0.0, -0.35], [-0.1, -0.35], [-0.14, -0.18], [-0.15, -0.02], [0.1, -0.35],
    [0.14, -0.18], [0.15, -0.02], [-0.07, 0.0], [-0.08, 0.22], [-0.08, 0.45], [0.07, 0.0],
    [0.08, 0.22], [0.08, 0.45], [-0.03, -0.48], [0.03, -0.48], [-0.06, -0.46], [0.06, -0.46],
])


def person(cx: float, cy: float, height: float = 100.0, parts: slice | list = slice(None),
           noise: float = 0.0, rng: np.random.Generator | None = None) -> Human:
    kp = np.zeros((18, 3), np.float32)
    xy = _TEMPLATE * height + (cx, cy)
    if noise:
        xy = xy + (rng or np.random.default_rng(0)).normal(0, noise, xy.shape)
    kp[parts, :2] = xy[parts]
    kp[parts, 2] = 0.8
    return Human(kp, 0.8, (1000, 1000))


# ------------------------------------------------------------------------------ assignment


def brute_force(cost: np.ndarray) -> float:
    n, m = cost.shape
    if n <= m:
        return min(sum(cost[i, c] for i, c in enumerate(p))
                   for p in itertools.permutations(range(m), n))
    return brute_force(cost.T)


def test_linear_assignment_is_optimal_on_random_matrices():
    rng = np.random.default_rng(1)
    for _ in range(300):
        n, m = rng.integers(1, 6, 2)
        cost = rng.random((n, m)) if rng.random() < 0.5 else rng.integers(0, 3, (n, m)) * 1.0
        rows, cols = linear_assignment(cost)
        assert len(rows) == min(n, m)
        assert len(set(rows)) == len(rows) and len(set(cols)) == len(cols)
        assert list(rows) == sorted(rows)
        assert cost[rows, cols].sum() == pytest.approx(brute_force(cost))


def test_linear_assignment_beats_greedy_and_handles_empty():
    # greedy takes the 0.0 pair first and is left with 10 + 10; optimal is 1 + 1
    cost = np.array([[0.0, 1.0, 9.0], [1.0, 10.0, 10.0], [9.0, 10.0, 1.0]])
    rows, cols = linear_assignment(cost)
    assert cost[rows, cols].sum() == pytest.approx(3.0)
    assert list(cols) == [1, 0, 2]
    r, c = linear_assignment(np.zeros((0, 3)))
    assert len(r) == len(c) == 0
    with pytest.raises(ValueError):
        linear_assignment(np.array([[np.inf, 1.0]]))


# ------------------------------------------------------------------------------ OKS


def test_oks_identity_distance_and_missing_parts():
    a = person(100, 100)
    near = person(103, 100)
    far = person(400, 100)
    sim = oks_matrix(np.stack([a.keypoints, near.keypoints, far.keypoints]),
                     np.stack([a.keypoints]))
    assert sim[0, 0] == pytest.approx(1.0)
    assert 0.3 < sim[1, 0] < 1.0
    assert sim[2, 0] < 1e-6
    # only two shared parts: counted as if three (min_common), so identical parts give 2/3
    legs = person(100, 100, parts=[9, 10])
    assert oks_matrix(legs.keypoints[None], a.keypoints[None])[0, 0] == pytest.approx(2 / 3)
    # no shared parts: 0
    head = person(100, 100, parts=[0, 14, 15])
    assert oks_matrix(head.keypoints[None], legs.keypoints[None])[0, 0] == 0.0
    # a bigger person tolerates the same pixel error better (scale = box area)
    small = oks_matrix(person(105, 100, 50).keypoints[None], person(100, 100, 50).keypoints[None])
    big = oks_matrix(person(105, 100, 200).keypoints[None], person(100, 100, 200).keypoints[None])
    assert big[0, 0] > small[0, 0]


# ------------------------------------------------------------------------------ tracker rules


def test_ids_persist_when_two_people_cross():
    """Two people walk towards each other and cross; velocity prediction keeps their ids."""
    tracker = Tracker()
    rng = np.random.default_rng(3)
    seen: dict[int, list[float]] = {}
    for f in range(30):
        t = f / 10
        left = person(200 + 12 * f, 300, noise=1.5, rng=rng)  # moves right
        right = person(548 - 12 * f, 310, noise=1.5, rng=rng)  # moves left
        people = tracker.update([right, left] if f % 2 else [left, right], t)
        for p in people:
            seen.setdefault(p.id, []).append(float(np.median(p.human.xy[:, 0])))
    assert tracker.ids_created == 2
    direction = {pid: np.sign(np.diff(xs)) for pid, xs in seen.items()}
    # each id moves one way only: no swap when they met (at frame 14-15)
    assert sorted(tuple(set(d.tolist())) for d in direction.values()) == [(-1.0,), (1.0,)]


def _as_skeleton(human: Human, skeleton: Skeleton) -> Human:
    """The same person in another skeleton: parts by name; the others between the hips or
    below the ankles (feet), MPI's head above the nose and chest between shoulders and hips."""
    kp = np.zeros((skeleton.num_parts, 3), np.float32)
    src = {name: human.keypoints[i] for i, name in enumerate(OPENPOSE_18.parts)}
    hips = (src["RHip"] + src["LHip"]) / 2
    extra = {"MidHip": hips, "Chest": (src["Neck"] + hips) / 2, "Head": src["Nose"] - (0, 8, 0)}
    for i, name in enumerate(skeleton.parts):
        if name in src:
            kp[i] = src[name]
        elif name in extra:
            kp[i] = extra[name]
        else:  # a foot point: under its ankle
            kp[i] = src[name[0] + "Ankle"] + (3 * (i % 3), 6, 0)
    return Human(kp, human.score, human.image_size, skeleton)


@pytest.mark.parametrize("skeleton", [BODY_25, MPI_15], ids=["body25", "mpi15"])
def test_people_of_other_skeletons_keep_their_ids_when_crossing(skeleton):
    tracker = Tracker()
    rng = np.random.default_rng(3)
    seen: dict[int, list[float]] = {}
    for f in range(30):
        left = _as_skeleton(person(200 + 12 * f, 300, noise=1.5, rng=rng), skeleton)
        right = _as_skeleton(person(548 - 12 * f, 310, noise=1.5, rng=rng), skeleton)
        people = tracker.update([right, left] if f % 2 else [left, right], f / 10)
        assert all(p.human.keypoints.shape == (skeleton.num_parts, 3) for p in people)
        for p in people:
            seen.setdefault(p.id, []).append(float(np.median(p.human.xy[:, 0])))
    assert tracker.ids_created == 2 and tracker.skeleton == skeleton
    direction = {pid: set(np.sign(np.diff(xs)).tolist()) for pid, xs in seen.items()}
    assert sorted(direction.values(), key=sorted) == [{-1.0}, {1.0}]
    assert oks_sigmas(skeleton).shape == (skeleton.num_parts,)


def test_lost_track_kept_for_max_lost_then_forgotten():
    tracker = Tracker(max_lost=1.0, min_hits=1)
    (p,) = tracker.update([person(100, 100)], 0.0)
    assert p.id == 1
    assert tracker.update([], 0.5) == []
    (p,) = tracker.update([person(104, 100)], 0.8)  # back within a second: same id
    assert p.id == 1
    tracker.update([], 1.5)
    (p,) = tracker.update([person(104, 100)], 2.0)  # 1.2 s later: forgotten, a new id
    assert p.id == 2
    assert tracker.ids_created == 2


def test_new_tracks_need_enough_parts_and_time_moves_forward():
    tracker = Tracker(min_parts=4)
    people = tracker.update([person(100, 100, parts=[0, 1, 2]), person(500, 100)], 0.0)
    assert [p.id for p in people] == [None, 1]
    # a partial detection may still continue an existing track
    (p,) = tracker.update([person(500, 100, parts=[1, 2, 5, 8])], 0.1)
    assert p.id == 1
    with pytest.raises(ValueError):
        tracker.update([], 0.05)


def test_split_off_arm_gets_no_id_and_does_not_steal_the_track():
    """The decoder sometimes returns a person without the right arm plus the arm and ear alone
    (measured on vtest.avi); the piece must neither start a track nor take the person's."""
    arm = [2, 3, 4, 16]
    body = [i for i in range(18) if i not in arm]
    tracker = Tracker(min_hits=1)
    (first,) = tracker.update([person(300, 300)], 0.0)
    piece = person(302, 300, parts=arm)
    piece.keypoints[[3, 4], 0] = 294.0  # the arm hangs by the body, inside its box
    people = tracker.update([piece, person(302, 300, parts=body)], 0.1)
    assert [p.id for p in people] == [None, first.id]
    # a second person standing close behind shares part types: a person, not a piece
    behind = person(310, 290, parts=[0, 1, 2, 5, 8, 11])
    people = tracker.update([person(304, 300), behind], 0.2)
    assert people[0].id == first.id and people[1].id not in (None, first.id)
    assert tracker.ids_created == 2


def test_new_people_get_their_id_on_their_second_frame():
    """min_hits = 2: a detection seen once (a false one in a crowd) takes no id; a person who
    arrives gets one in his second frame in a row and keeps it. At the start of a run, ids come
    at once."""
    tracker = Tracker()
    assert tracker.params.min_hits == 2
    (first,) = tracker.update([person(100, 100)], 0.0)
    assert first.id == 1  # the first frames: at once
    ids = []
    for f in range(1, 8):
        others = [person(400 + 3 * f, 300)] if f >= 4 else []  # arrives at frame 4
        if f == 2:
            others.append(person(600, 500))  # seen in frame 2 only
        people = tracker.update([person(100 + f, 100), *others], f / 10)
        assert people[0].id == 1
        ids.append([p.id for p in people[1:]])
    assert ids == [[], [None], [], [None], [2], [2], [2]]
    assert tracker.ids_created == 2  # the one-frame detection used no id
    # min_hits = 1: every new person has an id at once
    tracker = Tracker(min_hits=1)
    tracker.update([person(100, 100)], 0.0)
    tracker.update([person(101, 100)], 0.1)
    people = tracker.update([person(102, 100), person(600, 500)], 0.2)
    assert [p.id for p in people] == [1, 2]


def test_far_detection_is_a_new_person_not_a_jump():
    tracker = Tracker()
    tracker.update([person(100, 100)], 0.0)
    (p,) = tracker.update([person(600, 600)], 0.1)
    assert p.id == 2


def test_track_stats():
    a, b = person(0, 0), person(50, 0)
    frames = [[Person(1, a), Person(2, b)], [Person(1, a)], [Person(1, a), Person(None, b)]]
    s = track_stats(frames)
    assert (s.frames, s.detections, s.ids, s.untracked) == (3, 5, 2, 1)
    assert s.mean_track_length == pytest.approx(2.0)


# ------------------------------------------------------------------------------ One-Euro


def test_one_euro_smooths_jitter_and_follows_motion():
    rng = np.random.default_rng(0)
    t = np.arange(200) / 30
    still = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    raw = 100 + rng.normal(0, 2.0, (200, 1, 2))
    out = np.array([still(x, ti) for x, ti in zip(raw, t, strict=True)])
    assert out[50:].std() < 0.4 * raw[50:].std()
    # a steady motion: with beta > 0 the lag shrinks compared to beta = 0
    ramp = np.stack([100 + 300 * t, 100 + 0 * t], axis=-1)[:, None, :]
    lags = []
    for beta in (0.0, 5.0):
        f = OneEuroFilter(min_cutoff=1.0, beta=beta)
        y = np.array([f(x, ti, scale=100.0) for x, ti in zip(ramp, t, strict=True)])
        lags.append(float(np.abs(y[100:, 0, 0] - ramp[100:, 0, 0]).mean()))
    assert lags[1] < 0.5 * lags[0]


def test_one_euro_missing_points_pass_through_and_restart():
    f = OneEuroFilter()
    f(np.array([[0.0, 0.0], [10.0, 10.0]]), 0.0)
    out = f(np.array([[5.0, 5.0], [0.0, 0.0]]), 0.1, valid=np.array([True, False]))
    assert 0 < out[0, 0] < 5 and out[1, 0] == 0.0
    # the point comes back far away: it restarts there instead of sliding from the old place
    out = f(np.array([[5.0, 5.0], [80.0, 80.0]]), 0.2)
    assert out[1].tolist() == [80.0, 80.0]


def test_tracker_smoothing_changes_positions_not_ids():
    rng = np.random.default_rng(5)
    plain, smooth = Tracker(), Tracker(smooth=True)
    moves_plain, moves_smooth = [], []
    for f in range(40):
        h = person(300, 300, noise=3.0, rng=rng)
        (a,) = plain.update([h], f / 25)
        (b,) = smooth.update([h], f / 25)
        assert a.id == b.id == 1
        assert np.array_equal(a.human.keypoints, h.keypoints)
        moves_plain.append(a.human.xy.copy())
        moves_smooth.append(b.human.xy.copy())
    jitter = [np.abs(np.diff(np.array(m)[10:], axis=0)).mean() for m in (moves_plain,
                                                                          moves_smooth)]
    assert jitter[1] < 0.5 * jitter[0]


# ------------------------------------------------------------------------------ real footage


def test_posetrack_frames_the_two_players_keep_their_ids(estimator):
    """Hand-checked on the rendered frames: the white-shirted player on the left and the dark
    one in the middle are seen in all 10 frames; they keep ids 1 and 2 throughout."""
    folder = need(MEDIA / "posetrack-frames")
    results = list(iter_poses(open_source(folder), estimator, tracker=True))
    assert [r.frame.index for r in results] == list(range(10))
    assert [r.frame.name for r in results] == [f"{i:06d}.jpg" for i in range(10)]
    for r in results:
        xs = {p.id: p.human.bbox()[0] + p.human.bbox()[2] / 2 for p in r.people}
        assert 1 in xs and 2 in xs, r.frame.index
        assert xs[1] < xs[2]  # the left player stays left of the middle one
    stats = track_stats(r.people for r in results)
    # measured: 4 ids for 27 people in 10 frames (the two players, the one sliding on the
    # ground, the goalkeeper)
    assert stats.ids <= 5
    # a person without id is one seen for the first time: an id is new in the next frame
    seen: set[int] = set()
    for r, nxt in zip(results, results[1:], strict=False):
        seen |= {p.id for p in r.people}
        if any(p.id is None for p in r.people):
            assert {p.id for p in nxt.people} - seen - {None}, r.frame.index


def test_single_person_room_is_one_identity_and_smoothing_steadies_it(estimator):
    video = need(MEDIA / "single_person_room.mp4")
    raw = list(iter_poses(open_source(video, end=40), estimator, tracker=Tracker()))
    ids = {p.id for r in raw for p in r.people}
    assert ids == {1}, ids
    smooth = Tracker(smooth=True)
    jitters = []
    for use in (None, smooth):
        series = []
        for r in raw:
            humans = [p.human for p in r.people]
            people = use.update(humans, r.frame.time) if use else r.people
            series.append(people[0].human.keypoints if people else np.zeros((18, 3)))
        kp = np.array(series)
        ok = (kp[:-2, :, 2] > 0) & (kp[1:-1, :, 2] > 0) & (kp[2:, :, 2] > 0)
        accel = np.linalg.norm(kp[2:, :, :2] - 2 * kp[1:-1, :, :2] + kp[:-2, :, :2], axis=-1)
        jitters.append(float(accel[ok].mean()))
    assert jitters[1] < 0.8 * jitters[0], jitters
