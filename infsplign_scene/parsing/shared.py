"""Rules that every parser backend applies alike: object ids, "the X" references, and what a
between/among phrase means. The words themselves come from the lexicon (`grammar/lexicon.json`)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..lexicon import Lexicon
from ..scene import SceneObject

# What any backend reads at most: longer text is refused before parsing (`parsing.check_text`).
MAX_TEXT_LENGTH = 4000

# Nouns that name a place in the picture, never an object.
POSITION_WORDS = frozenset(
    [
        "left",
        "right",
        "top",
        "bottom",
        "side",
        "middle",
        "centre",
        "center",
        "front",
        "back",
        "background",
        "foreground",
        "corner",
        "edge",
        "other",
    ]
)


# Nouns that name the picture itself when "of" or "with" follows ("a photo of", "a scene with"),
# though "a painting over the sofa" is an object.
PICTURE_WORDS = frozenset(
    [
        "photo",
        "photograph",
        "picture",
        "image",
        "painting",
        "drawing",
        "illustration",
        "rendering",
        "render",
        "scene",
        "view",
        "shot",
        "closeup",
        "close-up",
        "close up",
        "landscape",
        "cartoon",
        "sketch",
        "portrait",
    ]
)


# A relation phrase whose object is one of these names a side of the picture ("at the bottom of
# this image"), not a relation to an object.
FRAME_WORDS = frozenset(["image", "picture", "photo", "photograph", "frame", "composition", "scene"])


def new_object_id(noun: str, taken: Iterable[str]) -> str:
    """An id from the noun ("teddy bear" -> "teddy_bear"), numbered when taken ("cat_2")."""
    base = re.sub(r"[^a-z0-9]+", "_", noun.lower()).strip("_") or "object"
    taken = set(taken)
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}_{n}", n + 1
    return candidate


def definite_referent(latest_first: Iterable[SceneObject], noun: str, attributes: list[str], name: str) -> str | None:
    """The object "the <name>" refers to: the latest one named so, or of the same noun whose
    attributes include the reference's ("the cat" after "a black cat")."""
    for obj in latest_first:
        if obj.name.lower() == name or (obj.noun == noun and set(attributes) <= set(obj.attributes)):
            return obj.id
    return None


def between_relations(
    phrase: str, subject: str, first: str, second: str, lexicon: Lexicon
) -> list[tuple[str, str, str]]:
    """What "<subject> between <first> and <second>" states: first left_of subject left_of second;
    for an among-phrase ("among", "amid"), subject near both."""
    if phrase in lexicon.among:
        return [(subject, "near", first), (subject, "near", second)]
    return [(first, "left_of", subject), (subject, "left_of", second)]


def group_relations(predicate: str, subjects: list[str]) -> list[tuple[str, str, str]]:
    """What a phrase after several objects states: "next to each other" (near) relates each two;
    an order ("from left to right": left_of) each to the next, in the order named."""
    if predicate == "near":
        return [(first, "near", second) for i, first in enumerate(subjects) for second in subjects[i + 1 :]]
    return [(first, predicate, second) for first, second in zip(subjects, subjects[1:], strict=False)]


# A place in the picture as its position on each axis it names: 0 left/top, 1 middle, 2 right/bottom.
_POSITIONS = {"left": {"x": 0}, "right": {"x": 2}, "top": {"y": 0}, "bottom": {"y": 2}, "middle": {"x": 1, "y": 1}}
_SIDE_OF = {"left": "left_of", "right": "right_of", "top": "above", "bottom": "below"}


def positions(place: str) -> dict[str, int]:
    """ "top left" -> {"y": 0, "x": 0}: a side, the middle, or a corner (two sides)."""
    return {axis: at for side in place.split() for axis, at in _POSITIONS[side].items()}


def placement_relations(placed: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """What places in the picture state ("a fox on the left and a goose on the right", "a cat at
    the top left and a dog at the bottom right"): two objects placed at different positions of an
    axis are related along it (the middle lies between the sides of either axis); left against
    top states nothing."""
    triples = []
    for i, (first, first_place) in enumerate(placed):
        for second, second_place in placed[i + 1 :]:
            if first == second:
                continue
            first_at, second_at = positions(first_place), positions(second_place)
            for axis in ("x", "y"):
                if axis in first_at and axis in second_at and first_at[axis] != second_at[axis]:
                    before, after = (first, second) if first_at[axis] < second_at[axis] else (second, first)
                    triples.append((before, "left_of" if axis == "x" else "above", after))
    return triples


_MIDDLE_WORDS = frozenset(["middle", "center", "centre"])


def side_in_words(words: list[str]) -> str | None:
    """The side of something that a phrase's words name ("at the bottom of": bottom; "in the
    center of": middle), or None ("above")."""
    return next((word if word in _SIDE_OF else "middle" for word in words if word in {*_SIDE_OF, *_MIDDLE_WORDS}), None)


def side_relations(subject: str, place: str, holder: str) -> list[tuple[str, str, str]]:
    """ "<holder> with <subject> on the <side>" (or "at the top left"): the sides are the holder's;
    the middle states nothing."""
    if subject == holder:
        return []
    return [(subject, _SIDE_OF[side], holder) for side in place.split() if side in _SIDE_OF]
