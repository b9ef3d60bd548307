"""The relation lexicon (`grammar/lexicon.json`): phrasings mapped to predicates, shared by all parsers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path


def grammar_dir() -> Path:
    """The `grammar/` folder: inside the installed wheel, or at the top of a source checkout."""
    packaged = Path(__file__).parent / "grammar"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "grammar"


@dataclass(frozen=True)
class Lexicon:
    relations: dict[str, str]  # phrase -> predicate
    pronoun_relations: dict[str, str]  # phrase such as "to its left" -> predicate
    placements: dict[str, str]  # "on the left" -> left, right, top, bottom, middle; "at the top left" -> top left
    between: frozenset[str]
    among: frozenset[str]  # between-phrases that mean "near both"
    settings: frozenset[str]  # "a kitchen with a stove next to a fridge": the stove is next to it
    comparisons: frozenset[str]  # nouns whose "between" compares: "a contrast between the old and the new"
    symmetric: frozenset[str]
    orders: dict[str, str]  # "from left to right" -> left_of: the objects before it, in the order named
    unsupported: frozenset[str]
    negations: frozenset[str]  # before a relation phrase: "not left of", reported as unsupported
    adverbs: frozenset[str]  # relation words that also stand alone: "the waves below"
    quantifiers: frozenset[str]  # stand for objects named before: "both sitting under a tree"
    reflexives: frozenset[str]  # "itself": no object of its own
    people: frozenset[str]  # what "he", "she", "him" and "her" name first
    lead_ins: frozenset[str]
    verbs: frozenset[str]
    over_nothing_verbs: frozenset[
        str
    ]  # lemmas after which "over" places nothing: a gaze, a way, a cover ("casting a shadow over")
    relative_pronouns: frozenset[str]
    pronouns: frozenset[str]
    possessive_pronouns: frozenset[str]
    plural_pronouns: frozenset[str]
    personal_pronouns: frozenset[str]  # refer to what a sentence is about: "the dirt under her"
    articles: frozenset[str]
    counts: dict[str, int]
    quantity_nouns: frozenset[str]  # "pair" in "a pair of scissors": the object is what follows "of"
    units: frozenset[str]  # "minutes" in "nine minutes": counted, no object
    colors: frozenset[str]
    sizes: frozenset[str]
    multiword_nouns: frozenset[str]
    singular_nouns: frozenset[str]

    @property
    def attribute_words(self) -> frozenset[str]:
        """Colour and size words: what may stand before a noun in a plain name ("small red cup")."""
        return self.colors | self.sizes

    def head_noun(self, name: str) -> str:
        """The noun that ends a name: its last word, or its last two when they are one noun
        ("traffic light" in "a small traffic light", "teddy bears")."""
        words = name.split()
        two = " ".join(words[-2:])
        return two if self.singular(two.lower()) in self.multiword_nouns else words[-1]

    def singular(self, noun: str) -> str:
        """The noun with its last word singular ("clouds" -> "cloud", "teddy bears" -> "teddy bear"),
        except words such as "skis", "scissors" and "bus"."""
        *before, last = noun.split()
        if last in self.singular_nouns or not last.endswith("s") or last.endswith("ss"):
            return noun
        if last.endswith("ies") and len(last) > 4:
            last = last[:-3] + "y"
        elif last.endswith(("ches", "shes", "xes", "sses", "zes")):
            last = last[:-2]
        else:
            last = last[:-1]
        return " ".join([*before, last])

    def phrases_for(self, predicate: str) -> list[str]:
        return [phrase for phrase, pred in self.relations.items() if pred == predicate]


@cache
def load_lexicon() -> Lexicon:
    data = json.loads((grammar_dir() / "lexicon.json").read_text(encoding="utf-8"))

    def invert(table: dict[str, list[str]]) -> dict[str, str]:
        return {phrase: predicate for predicate, phrases in table.items() for phrase in phrases}

    def corners(table: dict[str, list[str]]) -> dict[str, str]:
        """ "in the upper left corner", "at the bottom-right" -> "top left", "bottom right"."""
        found = {}
        for vertical in ("top", "bottom"):
            for word, side in ((w, s) for w in table[vertical] for s in ("left", "right")):
                for joined in (f"{word} {side}", f"{word}-{side}", f"{word} - {side}"):  # spaCy splits "-"
                    for preposition, ending in ((p, e) for p in table["prepositions"] for e in table["endings"]):
                        found[f"{preposition} {joined} {ending}".strip()] = f"{vertical} {side}"
        return found

    def possessives(table: dict[str, list[str]]) -> dict[str, str]:
        """ "to its left" -> also "to his left", "to her left", "to their left"."""
        phrases = invert(table)
        for phrase, predicate in list(phrases.items()):
            words = phrase.split()
            for pronoun in data["possessive_pronouns"] if "its" in words else []:
                phrases[" ".join(pronoun if word == "its" else word for word in words)] = predicate
        return phrases

    def degrees(phrases: dict[str, str]) -> dict[str, str]:
        """ "above" -> also "directly above", "slightly above", "high above", ..."""
        return phrases | {
            f"{degree} {phrase}": value for phrase, value in phrases.items() for degree in data["degrees"]
        }

    return Lexicon(
        relations=degrees(invert(data["relations"])),
        pronoun_relations=degrees(possessives(data["pronoun_relations"])),
        placements=invert(data["placements"]) | corners(data["corners"]),
        between=frozenset(data["between"]),
        among=frozenset(data["among"]),
        settings=frozenset(data["settings"]),
        comparisons=frozenset(data["comparisons"]),
        symmetric=frozenset(data["symmetric_suffixes"]),
        orders=invert(data["orders"]),
        unsupported=frozenset(data["unsupported"]),
        negations=frozenset(data["negations"]),
        adverbs=frozenset(data["adverbs"]),
        quantifiers=frozenset(data["quantifiers"]),
        reflexives=frozenset(data["reflexives"]),
        people=frozenset(data["people"]),
        lead_ins=frozenset(data["lead_ins"]),
        verbs=frozenset(data["verbs"]),
        over_nothing_verbs=frozenset(data["over_nothing_verbs"]),
        relative_pronouns=frozenset(data["relative_pronouns"]),
        pronouns=frozenset(data["pronouns"]),
        possessive_pronouns=frozenset(data["possessive_pronouns"]),
        plural_pronouns=frozenset(data["plural_pronouns"]),
        personal_pronouns=frozenset(data["personal_pronouns"]),
        articles=frozenset(data["articles"]),
        counts=dict(data["counts"]),
        quantity_nouns=frozenset(data["quantity_nouns"]),
        units=frozenset(data["units"]),
        colors=frozenset(data["colors"]),
        sizes=frozenset(data["sizes"]),
        multiword_nouns=frozenset(data["multiword_nouns"]),
        singular_nouns=frozenset(data["singular_nouns"]),
    )
