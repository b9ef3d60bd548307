"""What each predicate means, and how a relation is judged: the one table and the one judge.

Coordinates are fractions of the image, x to the right and y down. A directional predicate reads
one axis with a sign: `left_of` holds when the object's centre lies right of the subject's
(offset = sign * (object - subject) on the axis is positive). `near` holds when the centres are
at most `NEAR_DISTANCE` apart. Everything that decides what a predicate means reads this module:
the scene model (inverses, the phrase a written prompt uses), the analysis (axes, the forward
direction of each axis), the losses (axis and sign tensors), the guidance's satisfaction report,
the detectors' scores and the study.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Predicate = Literal["left_of", "right_of", "above", "below", "near"]
# Centres at most this far apart (a fraction of the image side) are "near"; also the default
# `near_margin` of the guidance loss, so that the loss is satisfied where the judge says so.
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


def center(where: Point | Box) -> Point:
    """The centre of a box (x0, y0, x1, y1), or a point (x, y) itself."""
    if len(where) == 4:
        return ((where[0] + where[2]) / 2, (where[1] + where[3]) / 2)
    return (where[0], where[1])


def holds(
    subject: Point | Box, obj: Point | Box, predicate: str, *, strict: bool = False, near: float = NEAR_DISTANCE
) -> bool:
    """Whether `subject predicate obj` holds between two boxes or centroids (image fractions).

    Directional predicates compare centres on their axis, as VISOR does with box centres;
    `strict` also asks that the axis dominate the offset (|dx| > |dy| for left_of). `near`: the
    centres are at most `near` apart."""
    (sx, sy), (ox, oy) = center(subject), center(obj)
    delta = (ox - sx, oy - sy)
    info = TABLE[predicate]
    if info.axis is None:
        return bool(math.hypot(*delta) <= near)
    offset, other = info.sign * delta[info.axis], delta[1 - info.axis]
    return bool(offset > 0 and (not strict or abs(offset) > abs(other)))
