"""COCO person keypoints as training samples: augmentation and stride-8 targets (numpy only).

A sample is the augmented network input (raw BGR, the input size), its OpenPose-18 keypoints,
Gaussian heatmaps per part + background, PAFs, and a mask that is 0 where the loss must not
look (crowd regions and people without keypoint annotations).
"""

from __future__ import annotations

import contextlib
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..defaults import DEFAULT_INPUT_SIZE, STRIDE
from ..errors import InputError, NotFoundError
from ..images import read_image
from ..skeleton import (
    COCO17_FROM_OPENPOSE18,
    FLIP_PARTS,
    LIMB_PAF_CHANNELS,
    LIMBS,
    NUM_HEATMAPS,
    NUM_PAFS,
    NUM_PARTS,
    PART_COLORS,
)

#: exp(-x) < 0.01 beyond this (the seed's heatmap cut-off).
_GAUSS_CUT = 4.6052


@dataclass(frozen=True)
class AugmentConfig:
    """Random augmentation of one training sample (all off: `AugmentConfig.none()`)."""

    scale_min: float = 0.7  # x the scale that fits the whole image into the input
    scale_max: float = 1.6
    rotate_deg: float = 15.0  # uniform in [-rotate_deg, rotate_deg]
    translate: float = 0.2  # crop centre jitter, as a fraction of the image size
    flip_prob: float = 0.5

    @staticmethod
    def none() -> AugmentConfig:
        """No augmentation: the whole image fitted, centred, unrotated, unflipped."""
        return AugmentConfig(1.0, 1.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class TargetConfig:
    """How the targets are drawn."""

    sigma: float = 8.0  # Gaussian sigma of the heatmaps, in input pixels (the seed's)
    paf_width: float = 1.0  # half-width of a limb in the PAFs, in map cells (the seed's)


def coco17_to_openpose18(kp: np.ndarray) -> np.ndarray:
    """COCO-17 keypoints (17, 3) [x, y, v] -> OpenPose-18 (18, 3); neck = shoulders' midpoint."""
    out = np.zeros((NUM_PARTS, 3), np.float32)
    kp = np.asarray(kp, np.float32).reshape(17, 3)
    for k, part in enumerate(COCO17_FROM_OPENPOSE18):
        out[part] = kp[k]
    ls, rs = kp[5], kp[6]
    if ls[2] > 0 and rs[2] > 0:
        out[1, :2] = (ls[:2] + rs[:2]) / 2
        out[1, 2] = min(ls[2], rs[2])
    return out


def flip_keypoints(kp: np.ndarray, width: int) -> np.ndarray:
    """Mirror OpenPose-18 keypoints (P, 18, 3) in an image of `width` and swap left/right."""
    out = kp[:, list(FLIP_PARTS)].copy()
    out[:, :, 0] = np.where(out[:, :, 2] > 0, width - 1 - out[:, :, 0], 0)
    return out


def _flip_paf_permutation() -> list[tuple[int, int]]:
    """For each PAF channel pair, the pair it becomes under a horizontal flip."""
    limbs = {limb: i for i, limb in enumerate(LIMBS)}
    perm = []
    for a, b in LIMBS:
        fa, fb = FLIP_PARTS[a], FLIP_PARTS[b]
        if (fa, fb) not in limbs:
            raise ValueError(f"limb ({a}, {b}) has no mirror limb")
        perm.append(LIMB_PAF_CHANNELS[limbs[(fa, fb)]])
    return perm


def flip_maps(heat: np.ndarray, paf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror target or predicted maps: swap left/right parts and limbs, negate PAF-x.

    heat (19, h, w), paf (38, h, w) -> the maps of the mirrored image.
    """
    heat_f = heat[[*FLIP_PARTS, NUM_PARTS], :, ::-1]
    paf_f = np.empty_like(paf)
    for (cx, cy), (mx, my) in zip(LIMB_PAF_CHANNELS, _flip_paf_permutation(), strict=True):
        paf_f[cx] = -paf[mx, :, ::-1]
        paf_f[cy] = paf[my, :, ::-1]
    return np.ascontiguousarray(heat_f), paf_f


def make_targets(
    keypoints: np.ndarray, size: tuple[int, int], config: TargetConfig = TargetConfig()
) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps (19, h/8, w/8) and PAFs (38, h/8, w/8) of people (P, 18, 3) in an input (w, h).

    Map cell (i, j) stands for input pixel (8j + 3.5, 8i + 3.5). Heatmaps: max over people of a
    Gaussian per part; background = 1 - max over parts. PAFs: the unit vector a->b on cells within
    `paf_width` cells of each limb segment, averaged where people overlap.
    """
    w, h = size
    mw, mh = -(-w // STRIDE), -(-h // STRIDE)
    offset = (STRIDE - 1) / 2
    gx = np.arange(mw, dtype=np.float32) * STRIDE + offset
    gy = np.arange(mh, dtype=np.float32) * STRIDE + offset
    heat = np.zeros((NUM_HEATMAPS, mh, mw), np.float32)
    paf = np.zeros((NUM_PAFS, mh, mw), np.float32)
    kp = np.asarray(keypoints, np.float32).reshape(-1, NUM_PARTS, 3)
    two_s2 = 2.0 * config.sigma**2
    for person in kp:
        for p in range(NUM_PARTS):
            x, y, v = person[p]
            if v <= 0:
                continue
            ex = (gx - x) ** 2 / two_s2
            ey = (gy - y) ** 2 / two_s2
            e = ey[:, None] + ex[None, :]
            g = np.where(e > _GAUSS_CUT, 0.0, np.exp(-e)).astype(np.float32)
            np.maximum(heat[p], g, out=heat[p])
    heat[NUM_PARTS] = np.clip(1.0 - heat[:NUM_PARTS].max(axis=0), 0.0, 1.0)

    cx_grid = (gx - offset) / STRIDE
    cy_grid = (gy - offset) / STRIDE
    for (a, b), (chx, chy) in zip(LIMBS, LIMB_PAF_CHANNELS, strict=True):
        count = np.zeros((mh, mw), np.float32)
        for person in kp:
            if person[a, 2] <= 0 or person[b, 2] <= 0:
                continue
            pa = (person[a, :2] - offset) / STRIDE
            pb = (person[b, :2] - offset) / STRIDE
            d = pb - pa
            length = float(np.hypot(*d))
            if length < 1e-6:
                continue
            u = d / length
            rx = cx_grid[None, :] - pa[0]
            ry = cy_grid[:, None] - pa[1]
            along = rx * u[0] + ry * u[1]
            across = np.abs(rx * u[1] - ry * u[0])
            on = (along >= -config.paf_width) & (along <= length + config.paf_width) & (
                across <= config.paf_width)
            paf[chx][on] += u[0]
            paf[chy][on] += u[1]
            count[on] += 1
        nz = count > 0
        paf[chx][nz] /= count[nz]
        paf[chy][nz] /= count[nz]
    return heat, paf


def coco_paths(coco_dir: str | Path, split: str) -> tuple[Path, Path]:
    """(annotation json, images folder) of a split in a COCO folder.

    Accepts the standard layout (annotations/person_keypoints_<split>.json + <split>/) and a flat
    one (person_keypoints.json + images/).
    """
    root = Path(coco_dir)
    candidates = [
        (root / "annotations" / f"person_keypoints_{split}.json", root / split),
        (root / f"person_keypoints_{split}.json", root / split),
        (root / "person_keypoints.json", root / "images"),
    ]
    for ann, images in candidates:
        if ann.is_file() and images.is_dir():
            return ann, images
    raise NotFoundError(
        f"no COCO keypoints for split {split!r} in {root} (expected "
        f"annotations/person_keypoints_{split}.json and {split}/, or person_keypoints.json and "
        "images/)")


@dataclass
class Sample:
    """One augmented training sample and its targets."""

    image: np.ndarray  # (H, W, 3) uint8 BGR, the network input
    keypoints: np.ndarray  # (P, 18, 3) OpenPose-18 in input pixels, v > 0 = present
    heat: np.ndarray  # (19, H/8, W/8)
    paf: np.ndarray  # (38, H/8, W/8)
    mask: np.ndarray  # (1, H/8, W/8), 1 = supervised, 0 = ignored
    image_id: int
    transform: np.ndarray = field(default_factory=lambda: np.eye(2, 3, dtype=np.float64))


class CocoPoseDataset:
    """COCO person keypoints (pycocotools) -> augmented samples with stride-8 targets.

    Indexing takes a key `epoch * len(dataset) + i`, so the augmentation of image i in an epoch
    is a pure function of (seed, epoch, i): identical across workers, ranks and resumed runs.
    """

    def __init__(
        self,
        ann_json: str | Path,
        images_dir: str | Path,
        input_size: tuple[int, int] = DEFAULT_INPUT_SIZE,
        augment: AugmentConfig | None = None,
        targets: TargetConfig = TargetConfig(),
        seed: int = 0,
        require_people: bool = True,
        limit: int | None = None,
    ) -> None:
        from pycocotools.coco import COCO

        w, h = input_size
        if w <= 0 or h <= 0 or w % 16 or h % 16:
            raise InputError(f"input size must be positive multiples of 16, got {w}x{h}")
        self.input_size = (int(w), int(h))
        self.images_dir = Path(images_dir)
        self.augment = augment if augment is not None else AugmentConfig()
        self.targets = targets
        self.seed = seed
        with contextlib.redirect_stdout(io.StringIO()):
            self.coco = COCO(str(ann_json))
        person_ids = self.coco.getCatIds(catNms=["person"]) or [1]
        ids = sorted(self.coco.getImgIds())
        if require_people:
            ids = [i for i in ids if any(
                a["num_keypoints"] > 0 and not a["iscrowd"]
                for a in self.coco.loadAnns(self.coco.getAnnIds(imgIds=i, catIds=person_ids)))]
        if limit:
            ids = ids[:limit]
        if not ids:
            raise InputError(f"{ann_json}: no images with annotated people")
        self.image_ids: list[int] = ids
        self.person_ids = person_ids

    def __len__(self) -> int:
        return len(self.image_ids)

    def _annotations(self, image_id: int) -> list[dict[str, Any]]:
        return self.coco.loadAnns(self.coco.getAnnIds(imgIds=image_id, catIds=self.person_ids))

    def _transform(self, img_w: int, img_h: int, rng: np.random.Generator) -> tuple[
            np.ndarray, bool]:
        """Affine image -> input (2x3) and whether it mirrors."""
        a = self.augment
        w, h = self.input_size
        fit = min(w / img_w, h / img_h)
        scale = fit * rng.uniform(a.scale_min, a.scale_max)
        angle = math.radians(rng.uniform(-a.rotate_deg, a.rotate_deg))
        cx = img_w / 2 + rng.uniform(-a.translate, a.translate) * img_w
        cy = img_h / 2 + rng.uniform(-a.translate, a.translate) * img_h
        flip = bool(rng.random() < a.flip_prob)
        c, s = math.cos(angle) * scale, math.sin(angle) * scale
        m = np.array([[c, -s, 0.0], [s, c, 0.0]])
        m[:, 2] = np.array([(w - 1) / 2, (h - 1) / 2]) - m[:, :2] @ np.array([cx, cy])
        if flip:
            m = np.array([[-1.0, 0.0, w - 1], [0.0, 1.0, 0.0]]) @ np.vstack([m, [0, 0, 1]])
        return m, flip

    def sample(self, index: int, epoch: int = 0) -> Sample:
        """The augmented sample of image `index` in `epoch`."""
        image_id = self.image_ids[index]
        info = self.coco.loadImgs(image_id)[0]
        image = read_image(self.images_dir / info["file_name"], orient=False)
        img_h, img_w = image.shape[:2]
        rng = np.random.default_rng([self.seed, epoch, index])
        m, flip = self._transform(img_w, img_h, rng)
        w, h = self.input_size
        warped = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        anns = self._annotations(image_id)
        people = [coco17_to_openpose18(a["keypoints"]) for a in anns
                  if a.get("num_keypoints", 0) > 0 and not a["iscrowd"]]
        kp = np.zeros((len(people), NUM_PARTS, 3), np.float32)
        for i, person in enumerate(people):
            xy = person[:, :2] @ m[:, :2].T + m[:, 2]
            kp[i, :, :2] = xy
            kp[i, :, 2] = person[:, 2]
        if flip and len(kp):
            kp = kp[:, list(FLIP_PARTS)]
        kp[:, :, :2] *= (kp[:, :, 2:] > 0)
        ignore = np.zeros((img_h, img_w), np.uint8)
        for a in anns:
            if a["iscrowd"] or a.get("num_keypoints", 0) == 0:
                ignore |= self.coco.annToMask(a).astype(np.uint8)
        mask = np.ones((1, -(-h // STRIDE), -(-w // STRIDE)), np.float32)
        if ignore.any():
            warped_ignore = cv2.warpAffine(ignore.astype(np.float32), m, (w, h),
                                           flags=cv2.INTER_LINEAR, borderValue=0)
            frac = cv2.resize(warped_ignore, (mask.shape[2], mask.shape[1]),
                              interpolation=cv2.INTER_AREA)
            mask[0] = (frac < 0.5).astype(np.float32)
        heat, paf = make_targets(kp, (w, h), self.targets)
        return Sample(warped, kp, heat, paf, mask, image_id, m)

    def __getitem__(self, key: int) -> dict[str, Any]:
        """Training arrays for key = epoch * len + index: image (3, H, W) float32 raw BGR,
        heat, paf, mask, index."""
        epoch, index = divmod(int(key), len(self))
        s = self.sample(index, epoch)
        image = np.ascontiguousarray(s.image.transpose(2, 0, 1), dtype=np.float32)
        return {"image": image, "heat": s.heat, "paf": s.paf, "mask": s.mask, "index": index}


def sample_figure(sample: Sample) -> np.ndarray:
    """A 2x2 picture of a sample: image + keypoints/limbs, heatmaps, PAF magnitude, mask."""
    image = sample.image
    h, w = image.shape[:2]
    skel = image.copy()
    t = max(1, round(max(h, w) / 300))
    for person in sample.keypoints:
        for k, (a, b) in enumerate(LIMBS[:17]):
            if person[a, 2] > 0 and person[b, 2] > 0:
                pa = tuple(int(round(v)) for v in person[a, :2])
                pb = tuple(int(round(v)) for v in person[b, :2])
                cv2.line(skel, pa, pb, PART_COLORS[k], t, cv2.LINE_AA)
        for p in range(NUM_PARTS):
            if person[p, 2] > 0:
                pt = tuple(int(round(v)) for v in person[p, :2])
                cv2.circle(skel, pt, t + 1, PART_COLORS[p], -1, cv2.LINE_AA)

    def overlay(values: np.ndarray, title: str) -> np.ndarray:
        v = cv2.resize(values.astype(np.float32), (w, h), interpolation=cv2.INTER_NEAREST)
        v8 = np.clip(v / max(float(v.max()), 1e-6) * 255, 0, 255).astype(np.uint8)
        out = cv2.addWeighted(image, 0.5, cv2.applyColorMap(v8, cv2.COLORMAP_JET), 0.5, 0)
        return _title(out, title)

    paf_mag = np.hypot(sample.paf[0::2], sample.paf[1::2]).max(axis=0)
    ignored = skel.copy()
    m = cv2.resize(sample.mask[0], (w, h), interpolation=cv2.INTER_NEAREST) < 0.5
    ignored[m] = (0.5 * ignored[m] + np.array([0, 0, 127])).astype(np.uint8)
    top = np.hstack([_title(skel, f"image {sample.image_id}"),
                     overlay(sample.heat[:NUM_PARTS].max(axis=0), "heatmaps")])
    bottom = np.hstack([overlay(paf_mag, "PAF |v|"), _title(ignored, "mask (red = ignored)")])
    return np.vstack([top, bottom])


def _title(image: np.ndarray, text: str) -> np.ndarray:
    scale = max(0.4, image.shape[1] / 900)
    cv2.putText(image, text, (6, int(22 * scale) + 4), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (255, 255, 255), max(1, int(2 * scale)), cv2.LINE_AA)
    return image


def write_sample_figure(
    coco_dir: str | Path, output: str | Path, split: str = "train2017",
    input_size: tuple[int, int] = DEFAULT_INPUT_SIZE, index: int = 0, epoch: int = 0, seed: int = 0,
    augment: bool = True,
) -> Path:
    """Write the picture of one augmented sample and its targets (atomically); return its path."""
    from ..files import atomic_path

    ann, images = coco_paths(coco_dir, split)
    ds = CocoPoseDataset(ann, images, input_size,
                         AugmentConfig() if augment else AugmentConfig.none(), seed=seed)
    if not 0 <= index < len(ds):
        raise InputError(f"index {index} out of range: the set has {len(ds)} images with people")
    figure = sample_figure(ds.sample(index, epoch))
    out = Path(output)
    suffix = out.suffix.lower() or ".png"
    ok, data = cv2.imencode(suffix, figure)
    if not ok:
        raise InputError(f"cannot encode an image as {suffix}")
    with atomic_path(out) as tmp:
        tmp.write_bytes(data.tobytes())
    return out
