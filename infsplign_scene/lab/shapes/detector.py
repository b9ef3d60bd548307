"""An exact detector for shape scenes: objects by colour (connected components), shape by template fit.

For each palette colour the largest connected component of pixels near that colour is the object;
its shape is the template (circle, square, triangle) of equal area at the same centroid with the
highest IoU. Pixels that are neither background nor near a detected object count as artifacts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from .scenes import BACKGROUND, COLORS, RADIUS_RANGE, SHAPES, shape_mask

COLOR_TOLERANCE = 70.0  # RGB distance to a palette colour
MIN_AREA = 6  # pixels; smaller blobs are specks, not objects
# A second blob of a colour counts as a second instance from half the area of the smallest object
# drawn in training (a triangle of the smallest radius, 1.8 r^2).
MIN_INSTANCE_AREA = 0.5 * 1.8 * RADIUS_RANGE[0] ** 2
# Area of each template as a multiple of radius^2, and its centroid's offset below the centre (x radius).
_AREA_FACTOR = {"circle": np.pi, "square": 1.7**2, "triangle": 1.8}
_CENTROID_OFFSET = {"circle": 0.0, "square": 0.0, "triangle": 0.2}


@dataclass(frozen=True)
class Detection:
    color: str
    shape: str
    centroid: tuple[float, float]  # (x, y) in [0, 1], y down
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in [0, 1]
    area: int
    fit: float  # IoU of the best template

    @property
    def name(self) -> str:
        return f"{self.color} {self.shape}"


@dataclass(frozen=True)
class DetectionResult:
    objects: dict[str, Detection]  # by colour
    artifact_pixels: int
    instances: dict[str, int] = field(default_factory=dict)  # by colour: blobs of at least MIN_INSTANCE_AREA

    def find(self, color: str, shape: str | None = None) -> Detection | None:
        found = self.objects.get(color)
        if found is None or (shape is not None and found.shape != shape):
            return None
        return found


def classify_shape(mask: np.ndarray) -> tuple[str, float]:
    """The template with the best IoU against a boolean mask, and that IoU."""
    area = mask.sum()
    ys, xs = np.nonzero(mask)
    cx, cy = xs.mean() + 0.5, ys.mean() + 0.5
    best = ("circle", -1.0)
    for shape in SHAPES:
        radius = float(np.sqrt(area / _AREA_FACTOR[shape]))
        template = shape_mask(shape, (cx, cy - _CENTROID_OFFSET[shape] * radius), radius, mask.shape[0])
        iou = (template & mask).sum() / max((template | mask).sum(), 1)
        if iou > best[1]:
            best = (shape, float(iou))
    return best


def detect(image: np.ndarray) -> DetectionResult:
    """image: uint8 [H, W, 3] (or a PIL image)."""
    pixels = np.asarray(image, dtype=np.float32)[..., :3]
    size = pixels.shape[0]
    palette = np.array(list(COLORS.values()), dtype=np.float32)
    distances = np.linalg.norm(pixels[:, :, None, :] - palette[None, None], axis=-1)  # [H, W, C]
    nearest = distances.argmin(-1)
    close = distances.min(-1) <= COLOR_TOLERANCE
    objects: dict[str, Detection] = {}
    instances: dict[str, int] = {}
    covered = np.zeros((size, size), dtype=bool)
    for index, color in enumerate(COLORS):
        labels, count = ndimage.label(close & (nearest == index))
        if count == 0:
            continue
        areas = ndimage.sum_labels(np.ones_like(labels), labels, index=np.arange(1, count + 1))
        instances[color] = int((areas >= MIN_INSTANCE_AREA).sum())
        largest = int(np.argmax(areas)) + 1
        mask = labels == largest
        if mask.sum() < MIN_AREA:
            continue
        shape, fit = classify_shape(mask)
        ys, xs = np.nonzero(mask)
        objects[color] = Detection(
            color=color,
            shape=shape,
            centroid=((xs.mean() + 0.5) / size, (ys.mean() + 0.5) / size),
            box=(xs.min() / size, ys.min() / size, (xs.max() + 1) / size, (ys.max() + 1) / size),
            area=int(mask.sum()),
            fit=fit,
        )
        covered |= mask
    background = np.linalg.norm(pixels - np.array(BACKGROUND, dtype=np.float32), axis=-1) <= COLOR_TOLERANCE / 2
    halo = ndimage.binary_dilation(covered, iterations=1)
    artifacts = int((~background & ~halo).sum())
    return DetectionResult(objects=objects, artifact_pixels=artifacts, instances=instances)
