"""Synthetic "shape scenes": coloured shapes on a plain background, with masks and captions.

Captions name the objects but never their relations ("a red circle and a blue square", random
order, uniform random positions), so a model trained on them renders what is named without
knowing left from right: any spatial gain at sampling time is the guidance's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IMAGE_SIZE = 32
BACKGROUND = (128, 128, 128)
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 190, 40),
    "blue": (30, 60, 230),
    "yellow": (240, 220, 30),
    "purple": (150, 40, 200),
    "cyan": (30, 220, 230),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
MAX_OBJECTS = 4
# Radius (half the extent) in pixels; drawn objects span 2r + 1 pixels.
RADIUS_RANGE = (4.5, 6.5)


@dataclass(frozen=True)
class ShapeObject:
    color: str
    shape: str
    center: tuple[float, float]  # (x, y) in pixels
    radius: float

    @property
    def name(self) -> str:
        return f"{self.color} {self.shape}"


def shape_mask(shape: str, center: tuple[float, float], radius: float, size: int = IMAGE_SIZE) -> np.ndarray:
    """Boolean [size, size] mask of one shape (pixel centres at integer + 0.5)."""
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    dx, dy = xs - center[0], ys - center[1]
    if shape == "circle":
        return dx * dx + dy * dy <= radius * radius
    if shape == "square":
        half = radius * 0.85
        return (np.abs(dx) <= half) & (np.abs(dy) <= half)
    if shape == "triangle":  # pointing up, base at the bottom
        top, bottom = -radius, radius * 0.8
        inside_height = (dy >= top) & (dy <= bottom)
        half_width = (dy - top) / (bottom - top) * radius
        return inside_height & (np.abs(dx) <= half_width)
    raise ValueError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")


def sample_objects(rng: np.random.Generator, count: int, max_tries: int = 200) -> list[ShapeObject]:
    """`count` objects with distinct colours at non-overlapping random places."""
    colors = rng.choice(list(COLORS), size=count, replace=False)
    placed: list[ShapeObject] = []
    for color in colors:
        for _ in range(max_tries):
            radius = float(rng.uniform(*RADIUS_RANGE))
            center = (float(rng.uniform(radius, IMAGE_SIZE - radius)), float(rng.uniform(radius, IMAGE_SIZE - radius)))
            if all(np.hypot(center[0] - o.center[0], center[1] - o.center[1]) > radius + o.radius + 1 for o in placed):
                placed.append(ShapeObject(str(color), str(rng.choice(SHAPES)), center, radius))
                break
        else:
            return sample_objects(rng, count, max_tries)
    return placed


def render(objects: list[ShapeObject], size: int = IMAGE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Image uint8 [size, size, 3] and an object-index map int8 [size, size] (-1 = background)."""
    image = np.empty((size, size, 3), dtype=np.uint8)
    image[:] = BACKGROUND
    index = np.full((size, size), -1, dtype=np.int8)
    for k, obj in enumerate(objects):
        mask = shape_mask(obj.shape, obj.center, obj.radius, size)
        image[mask] = COLORS[obj.color]
        index[mask] = k
    return image, index


def caption(objects: list[ShapeObject], rng: np.random.Generator) -> tuple[str, list[int]]:
    """'a red circle and a blue square' in random order, and the object index of each mention."""
    order = [int(i) for i in rng.permutation(len(objects))]
    return " and ".join(f"a {objects[i].name}" for i in order), order


DEFAULT_OBJECT_COUNTS = (0.1, 0.3, 0.3, 0.3)  # mostly two to four: the benchmark suites use 2-4


def sample_count(rng: np.random.Generator, probabilities: tuple[float, ...] | None = None) -> int:
    """1-4 objects, drawn with `probabilities` (default DEFAULT_OBJECT_COUNTS)."""
    return int(rng.choice(range(1, MAX_OBJECTS + 1), p=list(probabilities or DEFAULT_OBJECT_COUNTS)))
