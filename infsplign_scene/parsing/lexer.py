"""The rules backend's lexer: text -> phrase tokens, by longest match against the relation lexicon.

`lex` gives `and`, `which` and lead-ins their role from context; `relation_phrases` finds the
lexicon's relation phrases among words with the same index and priorities, so that every backend
reads the lexicon alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from ..lexicon import Lexicon, load_lexicon

_WORD = re.compile(r"[A-Za-z0-9]+(?:['’\-][A-Za-z0-9]+)*|[,;.!?:]")
_PUNCTUATION = frozenset(",;.!?:")
_SEPARATOR_WORDS = frozenset({"with", "while", "plus", "whereas", "then", "also", "where"})
# Kinds that can start a relation: "and" before one of them continues the subject's relations.
_RELATION_KINDS = frozenset({"REL", "UNSUP", "PREL", "BETWEEN", "SYMM", "PLACE", "VERB"})
# Same-length phrase ties go to the earlier kind.
_PRIORITY = ("SYMM", "PREL", "REL", "BETWEEN", "PLACE", "UNSUP", "LEAD", "VERB", "WHICH", "PRON", "DET")


@dataclass(frozen=True)
class PhraseToken:
    kind: str
    text: str  # the words as written
    start: int
    end: int
    value: str | int | None = None


class _PhraseIndex:
    """Phrases of the lexicon keyed by their first word, longest first."""

    def __init__(self, lexicon: Lexicon) -> None:
        entries: list[tuple[str, str, str | int | None]] = []
        entries += [("SYMM", p, "near") for p in lexicon.symmetric]
        entries += [("SYMM", p, predicate) for p, predicate in lexicon.orders.items()]
        entries += [("PREL", p, pred) for p, pred in lexicon.pronoun_relations.items()]
        entries += [("REL", p, pred) for p, pred in lexicon.relations.items()]
        entries += [("BETWEEN", p, p) for p in lexicon.between]
        entries += [("PLACE", p, side) for p, side in lexicon.placements.items()]
        entries += [("UNSUP", p, p) for p in lexicon.unsupported]
        placing = [phrase for kind, phrase, _ in entries if kind in ("SYMM", "PREL", "REL", "BETWEEN", "PLACE")]
        entries += [("UNSUP", f"{n} {p}", f"{n} {p}") for n in lexicon.negations for p in placing]  # "not left of"
        entries += [("LEAD", p, None) for p in lexicon.lead_ins]
        entries += [("VERB", p, None) for p in lexicon.verbs]
        entries += [("WHICH", p, None) for p in lexicon.relative_pronouns]
        entries += [("PRON", p, None) for p in lexicon.pronouns]
        entries += [("DET", p, 1) for p in lexicon.articles]
        entries += [("DET", p, n) for p, n in lexicon.counts.items()]
        self.negations = lexicon.negations
        self.by_first: dict[str, list[tuple[tuple[str, ...], str, str | int | None]]] = {}
        for kind, phrase, value in entries:
            words = tuple(phrase.split())
            self.by_first.setdefault(words[0], []).append((words, kind, value))
        for candidates in self.by_first.values():
            candidates.sort(key=lambda c: (-len(c[0]), _PRIORITY.index(c[1])))


@cache
def _phrase_index() -> _PhraseIndex:
    return _PhraseIndex(load_lexicon())


RELATION_PHRASE_KINDS = frozenset({"SYMM", "PREL", "REL", "BETWEEN", "PLACE", "UNSUP"})


def relation_phrases(words: list[str]) -> list[tuple[str, str, int, int]]:
    """Relation phrases among lower-case words by longest match: (kind, value, start, end).

    The same index and priorities as the lexer, so every backend reads the lexicon alike."""
    index = _phrase_index()
    found, i = [], 0
    while i < len(words):
        for phrase_words, kind, value in index.by_first.get(words[i], ()):
            end = i + len(phrase_words)
            if kind in RELATION_PHRASE_KINDS and tuple(words[i:end]) == phrase_words:
                found.append((kind, str(value), i, end))
                i = end
                break
        else:
            i += 1
    return found


_SIDES = {"left": "left_of", "right": "right_of"}


def possessive_side(words: list[str], i: int) -> tuple[str, int, int] | None:
    """ "on the sofa's right" at word i: (predicate, index of "sofa's", index after the side)."""
    if words[i] not in ("on", "to", "at"):
        return None
    for owner in range(i + 1, min(i + 6, len(words) - 1)):
        if words[owner] in _PUNCTUATION:
            return None
        if words[owner].endswith("'s") and words[owner + 1] in _SIDES:
            after = owner + 2
            for tail in (("hand", "side"), ("side",)):
                if tuple(words[after : after + len(tail)]) == tail:
                    after += len(tail)
                    break
            return _SIDES[words[owner + 1]], owner, after
    return None


def lex(text: str) -> list[PhraseToken]:
    """Split `text` into phrase tokens (longest lexicon match) with context-dependent roles."""
    words = [(m.group(0), m.start(), m.end()) for m in _WORD.finditer(text)]
    lowered = [w.lower().replace("’", "'") for w, _, _ in words]
    index = _phrase_index()
    raw: list[PhraseToken] = []
    owner_ends: dict[int, int] = {}  # "on the sofa's right": the word "sofa's" -> the word after "right"
    i = 0
    while i < len(words):
        word = lowered[i]
        at_sentence_start = not raw or raw[-1].kind == "SEP"
        if i in owner_ends:
            raw.append(PhraseToken("WORD", words[i][0][:-2], words[i][1], words[i][2] - 2))
            i = owner_ends.pop(i)
            continue
        side = possessive_side(lowered, i)
        if side is not None:
            predicate, owner, after = side
            owner_ends[owner] = after
            raw.append(PhraseToken("REL", words[i][0], words[i][1], words[i][2], predicate))
            i += 1
            continue
        if word in _PUNCTUATION:
            raw.append(PhraseToken("SEP", word, words[i][1], words[i][2]))
            i += 1
            continue
        chosen = None
        for phrase_words, kind, value in index.by_first.get(word, ()):
            n = len(phrase_words)
            if tuple(lowered[i : i + n]) != phrase_words:
                continue
            if kind == "LEAD" and not at_sentence_start:
                continue
            if kind == "WHICH" and not (raw and raw[-1].kind in ("WORD", "SEP")):
                continue
            chosen = (n, kind, value)
            break
        if chosen is None:
            if word.isdigit():
                chosen = (1, "DET", int(word))
            elif word == "and":
                chosen = (1, "AND", None)
            elif word in _SEPARATOR_WORDS:
                chosen = (1, "SEP", None)
            elif word in index.negations:
                chosen = (1, "NEG", None)  # no name holds it: "a cat does not sit left of a dog" is an error
            else:
                chosen = (1, "WORD", None)
        n, kind, value = chosen
        start, end = words[i][1], words[i + n - 1][2]
        raw.append(PhraseToken(kind, text[start:end], start, end, value))
        i += n
    return _assign_roles(raw)


def _assign_roles(raw: list[PhraseToken]) -> list[PhraseToken]:
    """Decide what each `and`/`which` is, from its neighbours."""
    tokens: list[PhraseToken] = []
    between_open = False
    clause_has_relation = False
    for position, token in enumerate(raw):
        kind = token.kind
        following = raw[position + 1].kind if position + 1 < len(raw) else None
        if kind == "AND":
            if between_open:
                between_open = False
            elif tokens and tokens[-1].kind == "SEP":
                continue  # ", and" is one separator
            elif following in _RELATION_KINDS:
                kind = "ALSO"
            elif clause_has_relation:
                kind = "SEP"
        elif kind == "WHICH":
            if following not in _RELATION_KINDS:
                kind = "WORD"
            elif tokens and tokens[-1].kind == "SEP" and tokens[-1].text == ",":
                tokens.pop()  # ", which" opens a relative clause, not a new sentence
        elif kind == "BETWEEN":
            between_open = True
        if kind in ("REL", "UNSUP", "PREL", "BETWEEN", "SYMM", "PLACE"):
            clause_has_relation = True
        elif kind == "SEP":
            clause_has_relation = False
            if tokens and tokens[-1].kind == "SEP":
                if token.text.lower() == "with":  # ", with" keeps "with" (its value the comma): see rules
                    tokens[-1] = PhraseToken(kind, token.text, token.start, token.end, tokens[-1].text)
                continue
        tokens.append(PhraseToken(kind, token.text, token.start, token.end, token.value))
    return tokens
