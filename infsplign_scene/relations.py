"""What each predicate means, and how a relation is judged: the one table and the one judge.

Coordinates are fractions of the image, x to the right and y down; a place is a box
(x0, y0, x1, y1) or a point (x, y), a box of no size. A directional predicate reads one axis with
a sign: `left_of` holds when the object's centre lies right of the subject's (offset = sign *
(object - subject) on the axis is positive), as VISOR judges box centres. `near` holds when the
two places are at most `NEAR_DISTANCE` apart: the gap between two boxes, the distance between two
points. Everything that decides what a predicate means reads this module:
the scene model (inverses, the phrase a written prompt uses), the analysis (axes, the forward
direction of each axis), the losses (axis and sign tensors), the guidance's satisfaction report,
the detectors' scores and the study.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Predicate = Literal["left_of", "right_of", "above", "below", "near"]
# Places at most this far apart (a fraction of the image side) are "near"; also the default
# `near_margin` of the guidance loss, so that the loss on centroids is satisfied where the judge says so.
NEAR_DISTANCE = 0.25


@dataclass(frozen=True)
class PredicateInfo:
    name: str
    axis: int | None  # 0 = x, 1 = y, None = no direction (near)
    sign: int  # +1: the object's coordinate is the larger one when the relation holds; 0 for near
    inverse: str
    phrase: str  # how a written prompt phrases it; every parser reads it back

    @property
    def canonical(self) -> bool:
        """Whether the analysis stores this predicate as it is (right_of and below are stored as their inverses)."""
        return self.sign >= 0


TABLE: dict[str, PredicateInfo] = {
    info.name: info
    for info in (
        PredicateInfo("left_of", 0, +1, "right_of", "to the left of"),
        PredicateInfo("right_of", 0, -1, "left_of", "to the right of"),
        PredicateInfo("above", 1, +1, "below", "above"),
        PredicateInfo("below", 1, -1, "above", "below"),
        PredicateInfo("near", None, 0, "near", "near"),
    )
}
PREDICATES: tuple[str, ...] = tuple(TABLE)
AXIS_NAMES = ("x", "y")


def forward_predicate(axis: int) -> str:
    """The predicate an analysis edge a -> b means on an axis: left_of on x, above on y."""
    return next(info.name for info in TABLE.values() if info.axis == axis and info.sign > 0)


def canonical_triple(subject: str, predicate: str, obj: str) -> tuple[str, str, str]:
    """One spelling per relation: right_of/below are written as their inverses; near is sorted."""
    info = TABLE[predicate]
    if not info.canonical:
        return (obj, info.inverse, subject)
    if info.axis is None and obj < subject:
        return (obj, predicate, subject)
    return (subject, predicate, obj)


Point = tuple[float, float]
Box = tuple[float, float, float, float]  # x0, y0, x1, y1


def as_box(where: Point | Box) -> Box:
    """A box (x0, y0, x1, y1) as it is, a point (x, y) as a box of no size."""
    return (where[0], where[1], where[2], where[3]) if len(where) == 4 else (where[0], where[1], where[0], where[1])


def center(where: Point | Box) -> Point:
    """The centre of a box, or a point itself."""
    x0, y0, x1, y1 = as_box(where)
    return ((x0 + x1) / 2, (y0 + y1) / 2)


def gap(first: Point | Box, second: Point | Box) -> float:
    """The distance between two places: 0 for overlapping boxes, the distance between two points."""
    a, b = as_box(first), as_box(second)
    dx = max(b[0] - a[2], a[0] - b[2], 0.0)
    dy = max(b[1] - a[3], a[1] - b[3], 0.0)
    return math.hypot(dx, dy)


def holds(
    subject: Point | Box, obj: Point | Box, predicate: str, *, strict: bool = False, near: float = NEAR_DISTANCE
) -> bool:
    """Whether `subject predicate obj` holds between two boxes or points (image fractions).

    Directional predicates compare centres on their axis; `strict` also asks that the axis
    dominate the offset (|dx| > |dy| for left_of). `near`: the places are at most `near` apart."""
    info = TABLE[predicate]
    if info.axis is None:
        return bool(gap(subject, obj) <= near)
    (sx, sy), (ox, oy) = center(subject), center(obj)
    delta = (ox - sx, oy - sy)
    offset, other = info.sign * delta[info.axis], delta[1 - info.axis]
    return bool(offset > 0 and (not strict or abs(offset) > abs(other)))


# Public benchmarks judge relations their own way; their rules live here too, so that every
# judgement of a relation is made in this module. Boxes are image fractions, y down.
GENEVAL_POSITION_THRESHOLD = 0.1  # djghosh13/geneval, evaluation/evaluate_images.py
T2I_COMPBENCH_IOU_THRESHOLD = 0.1  # Karine-Huang/T2I-CompBench, UniDet_eval/2D_spatial_eval.py
T2I_COMPBENCH_NEAR = 150 / 512  # its 150 pixels on the 512-pixel images it scores


def geneval_holds(subject: Box, obj: Box, predicate: str) -> bool | None:
    """GenEval's `relative_position`: the centre offset shrunk on each axis by 0.1 of the two
    boxes' summed size; the predicate holds when its axis carries over half the shrunk offset's
    share of the full offset. None for `near`, which GenEval does not judge."""
    info = TABLE[predicate]
    if info.axis is None:
        return None
    (sx, sy), (ox, oy) = center(subject), center(obj)
    offset = (sx - ox, sy - oy)  # the subject relative to the object
    sizes = (subject[2] - subject[0] + obj[2] - obj[0], subject[3] - subject[1] + obj[3] - obj[1])
    revised = [
        math.copysign(max(abs(d) - GENEVAL_POSITION_THRESHOLD * size, 0.0), d)
        for d, size in zip(offset, sizes, strict=True)
    ]
    if all(abs(r) < 1e-3 for r in revised):
        return False
    share = revised[info.axis] / math.hypot(*offset)
    return bool(-info.sign * share > 0.5)


def t2i_compbench_position(subject: Box, obj: Box, predicate: str) -> float:
    """T2I-CompBench's `determine_position` (2D spatial): 1 when the centres are apart along the
    predicate's axis more than across it and the boxes overlap by IoU under 0.1, 0.1 / IoU when
    they overlap more, 0 otherwise; `near` is 1 when the centres are within 150 of 512 pixels on
    either axis, else that distance over the larger offset."""
    (sx, sy), (ox, oy) = center(subject), center(obj)
    delta = (ox - sx, oy - sy)
    info = TABLE[predicate]
    if info.axis is None:
        if abs(delta[0]) < T2I_COMPBENCH_NEAR or abs(delta[1]) < T2I_COMPBENCH_NEAR:
            return 1.0
        return T2I_COMPBENCH_NEAR / max(abs(delta[0]), abs(delta[1]))
    offset, other = info.sign * delta[info.axis], delta[1 - info.axis]
    if offset <= 0 or abs(offset) <= abs(other):
        return 0.0
    overlap = iou(subject, obj)
    return 1.0 if overlap < T2I_COMPBENCH_IOU_THRESHOLD else T2I_COMPBENCH_IOU_THRESHOLD / overlap


def iou(first: Box, second: Box) -> float:
    """Intersection over union of two boxes."""
    width = max(0.0, min(first[2], second[2]) - max(first[0], second[0]))
    height = max(0.0, min(first[3], second[3]) - max(first[1], second[1]))
    inter = width * height
    union = (first[2] - first[0]) * (first[3] - first[1]) + (second[2] - second[0]) * (second[3] - second[1]) - inter
    return inter / union if union > 0 else 0.0
