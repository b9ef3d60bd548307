"""Synthetic noun scenes: emoji objects on soft backgrounds, with masks and captions.

Captions name the objects but never their relations ("a cat and two dogs and a lamp", random
order, uniform random positions, mirrored at random), so a model trained on them draws what is
named without knowing left from right: any spatial gain at sampling time is the guidance's.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

from .glyphs import NounClass, noun_classes, plural, sized_glyph

IMAGE_SIZE = 64
MAX_OBJECTS = 4
# The longer side of a drawn object, in pixels.
EXTENT_RANGE = (18, 28)
DEFAULT_OBJECT_COUNTS = (0.15, 0.35, 0.3, 0.2)
# Share of scenes with two or more objects in which one class is drawn twice ("two cats").
REPEAT_SHARE = 0.1
NUMBER_WORDS = {2: "two", 3: "three", 4: "four"}
VOWELS = "aeiou"


@dataclass(frozen=True)
class NounObject:
    noun: NounClass
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, end exclusive
    mirrored: bool

    @property
    def center(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)


@dataclass(frozen=True)
class Mention:
    """One phrase of a caption ("a cat", "two dogs"): its words and the objects it names."""

    words: tuple[str, ...]
    noun_words: int  # the last `noun_words` words are the noun
    objects: tuple[int, ...]
    noun: NounClass


def _place(rng: np.random.Generator, glyphs: list[np.ndarray], max_tries: int = 100) -> list[tuple[int, int]] | None:
    """Top-left corners for glyphs so that no two boxes touch (a one-pixel gap), or None."""
    corners: list[tuple[int, int, int, int]] = []
    for image in glyphs:
        height, width = image.shape[:2]
        for _ in range(max_tries):
            x, y = int(rng.integers(0, IMAGE_SIZE - width + 1)), int(rng.integers(0, IMAGE_SIZE - height + 1))
            if all(x > c[2] or x + width < c[0] or y > c[3] or y + height < c[1] for c in corners):
                corners.append((x, y, x + width, y + height))
                break
        else:
            return None
    return [(c[0], c[1]) for c in corners]


def sample_objects(rng: np.random.Generator, count: int, repeat: bool = False) -> list[NounObject]:
    """`count` objects of distinct classes (one class twice if `repeat`) at non-touching places."""
    classes = noun_classes()
    distinct = count - 1 if repeat else count
    chosen = [classes[int(i)] for i in rng.choice(len(classes), size=distinct, replace=False)]
    if repeat:
        chosen.append(chosen[0])
    while True:
        extents = rng.integers(EXTENT_RANGE[0], EXTENT_RANGE[1] + 1, size=count)
        mirrored = rng.random(count) < 0.5
        glyphs = [sized_glyph(noun.emoji, int(e)) for noun, e in zip(chosen, extents, strict=True)]
        corners = _place(rng, glyphs)
        if corners is not None:
            break
    return [
        NounObject(noun, (x, y, x + g.shape[1], y + g.shape[0]), bool(m))
        for noun, g, (x, y), m in zip(chosen, glyphs, corners, mirrored, strict=True)
    ]


def background(rng: np.random.Generator) -> np.ndarray:
    """A muted colour with a soft linear gradient: float32 [H, W, 3] in 0-1."""
    hue, saturation, value = rng.random(), rng.uniform(0.0, 0.3), rng.uniform(0.45, 0.85)
    base = np.array(colorsys.hsv_to_rgb(hue, saturation, value), dtype=np.float32)
    angle, strength = rng.uniform(0, 2 * np.pi), rng.uniform(0.0, 0.08)
    ys, xs = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE].astype(np.float32) / (IMAGE_SIZE - 1) - 0.5
    ramp = strength * (np.cos(angle) * xs + np.sin(angle) * ys)
    return np.clip(base[None, None, :] + ramp[:, :, None], 0, 1)


def render(objects: list[NounObject], backdrop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Image uint8 [H, W, 3] and an object-index map int8 [H, W] (-1 = background; alpha > 0.5)."""
    image = backdrop.copy()
    index = np.full((IMAGE_SIZE, IMAGE_SIZE), -1, dtype=np.int8)
    for k, obj in enumerate(objects):
        x0, y0, x1, y1 = obj.box
        rgba = sized_glyph(obj.noun.emoji, max(x1 - x0, y1 - y0))
        if obj.mirrored:
            rgba = rgba[:, ::-1]
        alpha = rgba[:, :, 3:]
        image[y0:y1, x0:x1] = rgba[:, :, :3] * alpha + image[y0:y1, x0:x1] * (1 - alpha)
        index[y0:y1, x0:x1][alpha[:, :, 0] > 0.5] = k
    return (image * 255).round().astype(np.uint8), index


def mentions(objects: list[NounObject], rng: np.random.Generator) -> list[Mention]:
    """One mention per class in random order; each picks the class name or a synonym."""
    by_class: dict[int, list[int]] = {}
    for k, obj in enumerate(objects):
        by_class.setdefault(obj.noun.index, []).append(k)
    result = []
    for class_index in rng.permutation(list(by_class)):
        members = tuple(by_class[int(class_index)])
        noun = objects[members[0]].noun
        name = noun.name if rng.random() < 0.6 else str(rng.choice(noun.names))
        if len(members) > 1:
            words = (NUMBER_WORDS[len(members)], *plural(name).split())
        else:
            words = ("an" if name[0] in VOWELS else "a", *name.split())
        result.append(Mention(words, len(words) - 1, members, noun))
    return result


def caption(phrases: list[Mention]) -> str:
    """'a cat and two dogs': the mentions joined by 'and'."""
    return " and ".join(" ".join(m.words) for m in phrases)


def sample_count(rng: np.random.Generator, probabilities: tuple[float, ...] | None = None) -> int:
    return int(rng.choice(range(1, MAX_OBJECTS + 1), p=list(probabilities or DEFAULT_OBJECT_COUNTS)))


def sample_scene(
    rng: np.random.Generator, counts: tuple[float, ...] | None = None
) -> tuple[np.ndarray, np.ndarray, list[NounObject], list[Mention]]:
    """One training scene: image, object-index map, objects and the caption's mentions."""
    count = sample_count(rng, counts)
    objects = sample_objects(rng, count, repeat=count >= 2 and rng.random() < REPEAT_SHARE)
    image, index = render(objects, background(rng))
    return image, index, objects, mentions(objects, rng)
