"""How a relation phrase reads before objects are attached to it: one that places nothing (a
particle, a viewpoint, a comparison, a cover), a relation word used as an adverb and what it then
relates, a negation, a side of the picture. Between `attachment` (which objects a phrase is
about) and the extractor in `dependency`."""

from __future__ import annotations

from dataclasses import dataclass

from .attachment import Attachment
from .shared import PICTURE_WORDS, between_relations
from .spacy_model import Phrase


def names_an_author(by) -> bool:
    """ "a painting by Goya", "Marlene Dietrich by Ilya Repin", "..., by james jean": whether a "by"
    token names who made the picture (after a picture word or a comma, or before a capitalised name
    with no article that is no place's: not "a cabin by Lake Tahoe"), not where a thing is."""
    before = by.doc[by.i - 1] if by.i > 0 else None
    if before is None or before.text == "," or before.lower_ in PICTURE_WORDS | {"art", "artwork"}:
        return True
    name = next((c for c in by.children if c.dep_ == "pobj"), None)
    if name is None or name.pos_ != "PROPN" or not name.text[:1].isupper():
        return False  # a name, written as one: not "person by umbrella"
    if any(c.dep_ == "det" for c in name.children):
        return False
    return name.ent_type_ not in ("GPE", "LOC", "FAC")


@dataclass
class Readings(Attachment):
    def places_nothing(self, phrase: Phrase) -> bool:
        """A relation word that relates nothing: a verb's particle ("a glass tipped over", "passing
        by"), an adjective ("in the near distance"), a passive's agent ("rocks sorted by colour"),
        "over" as a gaze, a way along a surface or a cover ("looking over a valley", "driving over a
        bridge", "stretched over a frame"), "all over it" (covering), a viewpoint ("a tower seen
        from below"), a comparison ("a contrast between the old and the new"), an author ("a painting by
        Goya"), or the background as its object ("isolated over a white background")."""
        token, word = self.doc[phrase.start], self.written(self.doc[phrase.start])
        before = self.doc[phrase.start - 1].lower_ if phrase.start > 0 else ""
        objects = self.phrase_objects(phrase)
        agent = token.dep_ == "agent" and token.head.tag_ == "VBN"  # not "a cat laying by a banister"
        # "a giraffe looking over a fence", "a truck rolling over a field": a gaze, a way along a surface
        across = word.split()[0] == "over" and token.head.lemma_ in self.lexicon.over_nothing_verbs
        viewpoint = before == "from" and not objects
        # "a cruise ship passing by": one word that is no adverb, with no object, right after its verb
        particle = (
            not objects
            and len(word.split()) == 1
            and word not in self.lexicon.adverbs
            and token.head.i == phrase.start - 1
            and token.head.pos_ == "VERB"
            and self.nothing_follows(phrase)
        )
        compared = phrase.kind == "BETWEEN" and token.head.lemma_.lower() in self.lexicon.comparisons
        if token.dep_ in ("prt", "amod") or particle or agent or across or viewpoint or compared or before == "all":
            return True
        if word == "by" and names_an_author(token):
            return True
        return bool(objects) and objects[0].lower_ in ("background", "foreground")

    def chained_subject(self, phrase: Phrase) -> str | None:
        """ "a dog on the left of a cat on the left of a bird": a phrase right after the object of
        the same predicate is about that object (a chain of one predicate), wherever the parser
        hung it."""
        before = self.doc[phrase.start - 1] if phrase.start > 0 else None
        if phrase.kind != "REL" or before is None or before.i not in self.by_token or before.dep_ != "pobj":
            return None
        link = self.phrase_at.get(before.head.i)
        if link is None or (link.kind, link.value) != ("REL", phrase.value) or self.places_nothing(link):
            return None  # not after "rocks organized by colour"
        return self.by_token[before.i]

    def negated(self, phrase: Phrase) -> Phrase:
        """ "A cat does not sit left of a dog": the phrase from the negation on, as unsupported (no
        predicate says where a thing is not); "not left of" itself is one phrase of the lexer."""
        verb = self.doc[phrase.start].head
        negation = next((c for c in verb.children if c.dep_ == "neg" and c.i < phrase.start), None)
        if phrase.kind == "UNSUP" or negation is None:
            return phrase
        return Phrase("UNSUP", phrase.value, negation.i, phrase.end)

    def frame_side(self, phrase: Phrase) -> str | None:
        """The side of the picture a phrase names when its object is the picture ("at the bottom
        of this image")."""
        return next((self.frame_of(c) for c in self.phrase_objects(phrase) if c.dep_ == "pobj"), None)

    def used_as_adverb(self, phrase: Phrase) -> bool:
        """A relation word with no object, read as an adverb or one that can stand alone, before a
        verb, punctuation or the end ("the sky above is clear", "lights above."); "nearby" is an
        adverb by nature."""
        if phrase.kind != "REL" or self.phrase_objects(phrase):
            return False
        token, word = self.doc[phrase.start], self.written(self.doc[phrase.start])
        standing_alone = token.pos_ == "ADV" or word in self.lexicon.adverbs  # "a dog sleeping underneath"
        return word == "nearby" or (standing_alone and self.nothing_follows(phrase))

    def nothing_follows(self, phrase: Phrase) -> bool:
        """Whether a verb, punctuation or the end follows the phrase, not a noun (nor "umbrella
        next to can", its noun read as a verb)."""
        following = self.doc[phrase.end] if phrase.end < len(self.doc) else None
        return following is None or (
            following.i not in self.by_token and (following.is_punct or following.pos_ in ("AUX", "VERB"))
        )

    def between_adverb(self, phrase: Phrase) -> list[tuple[str, str, str]]:
        """ "a car left of a bus, with a bicycle in between": the object just before a "between"
        with no object of its own, between the two objects named before it."""
        before = self.doc[phrase.start - 1] if phrase.start > 0 else None
        if phrase.kind != "BETWEEN" or self.phrase_objects(phrase) or not self.nothing_follows(phrase):
            return []
        if before is None or before.i not in self.by_token:
            return []
        subject = self.by_token[before.i]
        pair = self.latest_objects(before.i, {subject}, count=2)
        return between_relations(phrase.value, subject, *pair, self.lexicon) if pair else []

    def unfinished(self, phrase: Phrase) -> bool:
        """Whether the text stops at the relation word with its object left out: a phrase that never
        stands alone ("a cat sitting next to"), or one in a sentence with no verb ("a cat above"),
        not an adverb ("a gull watches the waves below")."""
        sentence = self.doc[phrase.start].sent
        alone = self.written(self.doc[phrase.start]) in self.lexicon.adverbs
        verb = any(t.pos_ in ("VERB", "AUX") for t in sentence)
        return all(t.is_punct for t in self.doc[phrase.end :]) and not (alone and verb)

    def adverb_anchor(self, phrase: Phrase) -> tuple[str, str] | None:
        """ "a lamp with lights above", "a napkin with a spoon resting atop": the object of the
        "with" phrase, and the object it belongs to, whose place the adverb is relative to."""
        owner = self.doc[phrase.start].head
        if owner.dep_ == "acl" and owner.head.i != owner.i:  # "a spoon resting atop"
            owner = owner.head
        subject = self.resolve(owner) if owner.i != phrase.start else None
        holder = self.holder_of(subject, owner.i) if subject is not None else None
        before = self.doc[phrase.start - 1] if phrase.start > 0 else owner
        if holder is None and before.i in self.by_token and before.head.lower_ == "with":
            subject = self.by_token[before.i]  # "a bird over a bridge, with a boat underneath": the boat
            holder = self.holder_of(subject, before.i)
        return (subject, holder) if holder is not None else None
