"""Rules that every parser backend applies alike: object ids, "the X" references, and what a
between/among phrase means. The words themselves come from the lexicon (`grammar/lexicon.json`)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..lexicon import Lexicon
from ..scene import SceneObject

# What any backend reads at most: longer text is refused before parsing (`parsing.check_text`).
MAX_TEXT_LENGTH = 4000


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
