"""Which objects a relation phrase is about, in a dependency parse: the words it hangs on as its
objects, the noun it hangs on or the subject of its clause, the noun a chain of phrases starts
from, coordinated nouns, the object a "with" phrase belongs to, what is held instead of its
holder's part. The middle layer of the dependency backend (`Mentions` below it, `Readings` and the
extractor in `dependency` above it)."""

from __future__ import annotations

from dataclasses import dataclass

from .mentions import NOUN_TAGS, SUBJECT_DEPS, Mentions
from .shared import PICTURE_WORDS
from .spacy_model import Phrase


@dataclass
class Attachment(Mentions):
    @property
    def phrase_at(self) -> dict[int, Phrase]:
        return {phrase.start: phrase for phrase in self.phrases}

    def phrase_objects(self, phrase: Phrase) -> list:
        """The words the parse hangs on the phrase as its objects: those of its last word, else
        those of another of its words ("next" in "next to")."""
        objects = [c for c in self.doc[phrase.end - 1].children if c.dep_ in ("pobj", "dobj")]
        if not objects:
            objects = [c for t in self.doc[phrase.start : phrase.end] for c in t.children if c.dep_ == "pobj"]
            objects = [o for o in objects if not (phrase.start <= o.i < phrase.end)]
        return objects

    def subject_of(self, phrase: Phrase) -> list[str]:
        """Walk up from the phrase's first word to the object it describes (and its conjuncts)."""
        head = self.doc[phrase.start].head
        direct = True  # the phrase hangs on the noun itself, not on a clause about it
        for _ in range(8):
            if phrase.start <= head.i < phrase.end and head.head.i != head.i:
                head = head.head
                continue
            resolved = self.resolve(head)
            if resolved is not None and head.pos_ in NOUN_TAGS | {"PRON"}:
                held = self.held_in_setting(head, phrase.start)
                if held is not None:  # "a bathroom with a toilet next to a sink", the phrase hung on the room
                    return [held]
                if direct and phrase.kind != "PLACE":
                    head = self.chain_head(head, phrase)
                    resolved = self.resolve(head) or resolved
                return self.with_conjuncts(head, resolved, phrase.start)
            direct = False
            depicted = self.depicted(head)
            if depicted is not None:  # "a photo of a vase on the ground below a chair": the vase
                return [self.resolve(depicted)]
            if head.pos_ in ("VERB", "AUX"):
                subject = self.verb_subject(head, imperative=True)
                if subject is not None:
                    return self.with_conjuncts(subject, self.resolve(subject), phrase.start)
                if (
                    head.dep_ == "acl"
                    and head.head.dep_ == "dobj"
                    and head.head.head.lemma_ in ("wear", "hold", "carry")
                ):
                    head = head.head.head  # "people wearing helmets, standing by bikes": what is worn does not stand
                    continue
                if head.dep_ in ("acl", "relcl", "conj", "pcomp"):
                    head = head.head
                    continue
            if head.head.i == head.i:
                break
            head = head.head
        return []

    def depicted(self, token):
        """The object of "a photo of <object>", when the token is the picture word."""
        if self.written(token) not in PICTURE_WORDS or token.i in self.by_token:
            return None
        of = self.of_object(token)
        return of if of is not None and self.resolve(of) is not None else None

    def verb_subject(self, verb, imperative: bool = False):
        """The token naming what a verb is about: its subject, the "there is" attribute, or, for an
        imperative ("paint a river"), its object."""
        deps = (SUBJECT_DEPS, ("attr",), ("dobj",)) if imperative and verb.dep_ == "ROOT" else (SUBJECT_DEPS, ("attr",))
        for wanted in deps:
            named = [c for c in verb.children if c.dep_ in wanted]
            named += [j for c in named if self.resolve(c) is None for j in c.conjuncts]  # "purple and white cabbage"
            found = [c for c in named if self.resolve(c) is not None]
            if found and found[0].lower_ == "it" and verb.lemma_ in ("look", "seem", "appear"):
                likeness = [
                    o
                    for c in verb.children
                    if c.lower_ == "like"
                    for o in c.children
                    if o.dep_ == "pobj" and self.resolve(o) is not None
                ]
                found = likeness or found  # "on the left it looks like a planet": the planet
            if found:  # a noun before a picture word standing for its object ("a photo of a bear; a bus is ...")
                return min(found, key=lambda c: self.written(c) in PICTURE_WORDS)
        return None

    def chain_head(self, token, phrase: Phrase):
        """The noun a chain of place and object phrases starts from: a phrase after "a cat sitting on
        a mat", "a glass of juice", "a vase with flowers" or "a child eating a cake" is about the cat,
        the glass, the vase, the child. A chain of one predicate stays a chain ("a moon above a
        cloud above a hill": the cloud is above the hill)."""
        for _ in range(8):
            if token.dep_ == "pobj":
                link = self.phrase_at.get(token.head.i)
                if link is not None and link.kind == "REL" and link.value == phrase.value:
                    break
                if phrase.kind == "PREL" and token.head.lower_ == "with":
                    break  # "a desk with a mug to its right": the mug's side of the desk
                if token.head.lower_ == "with" and token.head.i > 0 and self.doc[token.head.i - 1].text == ",":
                    break  # "a tiger on a car, with a flamingo next to a tree": the flamingo
                if token.head.lower_ == "with" and self.is_setting(token.head.head):
                    break  # "a kitchen with a stove next to a fridge": the stove
                owner = token.head.head
            elif token.dep_ == "dobj":
                owner = token.head
            else:
                break
            if owner.i != token.i and owner.i in self.by_token:
                token = owner
                continue
            while owner.dep_ == "conj" and owner.pos_ in ("VERB", "AUX") and owner.head.i != owner.i:
                owner = owner.head
            if owner.pos_ not in ("VERB", "AUX"):
                break
            subject = self.verb_subject(owner)
            if subject is None and owner.dep_ in ("acl", "relcl") and owner.head.i in self.by_token:
                subject = owner.head
            if subject is None or subject.i == token.i:
                break
            token = subject
        return token

    def with_conjuncts(self, token, resolved: str, before: int) -> list[str]:
        """The subject and its conjuncts ("a cat and a dog left of ...", "a cat, a dog and a bird
        ..." read as an apposition), except those that an earlier phrase already describes ("a
        horse on its left and two dogs on its right"). "both" for one object that is not many: the
        two objects named last ("a cat left of a dog, both under a tree"); not "they", which may
        name one person."""
        quantifier = token.lower_ in self.lexicon.quantifiers and not self.is_plural(resolved)
        if quantifier and (pair := self.latest_objects(token.i, set(), 2)):
            return pair
        listed = [c for c in self.list_members(token) if c.i < before and c.i in self.by_token]
        tokens = sorted({token, *listed}, key=lambda t: t.i)
        earlier_phrase = max((p.start for p in self.phrases if tokens[0].i < p.start < tokens[-1].i), default=-1)
        kept = [t for t in tokens if t.i > earlier_phrase] or [token]
        subjects: list[str] = []
        for kept_token in kept:
            object_id = resolved if kept_token.i == token.i else self.by_token[kept_token.i]
            if object_id not in subjects:
                subjects.append(object_id)
        return subjects

    @staticmethod
    def list_members(token) -> list:
        """The tokens coordinated with this one, also across the apposition that a parser makes of
        a list's first comma ("a cat, a dog and a bird"), but not another name for the same thing
        ("my dog, a poodle")."""

        def is_list(apposition) -> bool:
            return apposition.dep_ == "appos" and any(c.dep_ == "conj" for c in apposition.children)

        top = token
        while (top.dep_ == "conj" or is_list(top)) and top.head.i != top.i:
            top = top.head
        members = [top, *top.conjuncts]
        for apposition in (c for c in top.children if is_list(c)):
            members += [apposition, *apposition.conjuncts]
        return [m for m in members if m.i != token.i]

    def coordinated(self, first, sentence_end: int) -> list[str]:
        """The references coordinated with the first ("next to a hat, a book and a blanket"), except
        one that a phrase of its own follows ("left of a dog and a lamp above the cat")."""
        references = []
        for conjunct in first.conjuncts:
            object_id = self.resolve(conjunct)
            if conjunct.i < first.i or object_id is None:
                continue
            following = self.position_after(conjunct.i + 1, sentence_end)
            stop = sentence_end if following is None else following
            if any(conjunct.i < p.start < stop for p in self.phrases):
                break
            references.append(object_id)
        return references

    def mention_after(self, index: int, sentence_end: int) -> str | None:
        position = self.position_after(index, sentence_end)
        return None if position is None else self.by_token[position]

    def position_after(self, index: int, sentence_end: int) -> int | None:
        return next((p for p in sorted(self.by_token) if index <= p < sentence_end), None)

    def mention_before(self, index: int, sentence_start: int, exclude: set[str]) -> str | None:
        for position in sorted(self.by_token, reverse=True):
            if sentence_start <= position < index and self.by_token[position] not in exclude:
                return self.by_token[position]
        return None

    def holder_of(self, subject: str, near: int) -> str | None:
        """ "X with Y on the left", "X with Y on its left", "X walks with Y ...", "X has Y on its
        left": X, whose sides the phrase names."""
        token = self.mention_near(subject, near)
        if token is None:
            return None
        start = token.i
        # "X with a slice of cake (a cup of tea) on the left": the slice (the cup) is what X holds
        while token.dep_ == "pobj" and token.head.lower_ == "of" and token.head.head.i != token.head.i:
            owner = token.head.head
            if not (self.is_quantity(owner) or owner.i in self.by_token):
                break
            token = owner
        while token.dep_ == "conj" and token.head.i != token.i:
            token = token.head
            if any(c.lower_ == "with" and c.i < start for c in token.children):  # "X with Y ... and Z ...", Z hung on X
                return None if self.is_setting(token) else self.resolve(token)
        preposition = token.head
        if token.dep_ == "dobj" and preposition.lemma_ == "have":  # "a table has a lamp above it": the table
            owner = self.verb_subject(preposition)
            return self.resolve(owner) if owner is not None else None
        if preposition.lower_ != "with" or preposition.i == token.i:
            return None
        if preposition.head.pos_ in ("VERB", "AUX"):  # "a couple walks with a kite above them": the couple
            subject = self.verb_subject(preposition.head)
            return self.resolve(subject) if subject is not None else None
        return None if self.is_setting(preposition.head) else self.resolve(preposition.head)

    def mention_near(self, object_id: str, near: int):
        """The object's mention closest to token `near`, or None."""
        mentions = [i for i, mentioned in self.by_token.items() if mentioned == object_id]
        return self.doc[min(mentions, key=lambda i: abs(i - near))] if mentions else None

    def container_of(self, object_id: str, near: int) -> str:
        """The object whose "of" phrase names this one ("a cup of tea": the cup), else itself."""
        token = self.mention_near(object_id, near)
        while token.dep_ == "pobj" and token.head.lower_ == "of" and token.head.head.i in self.by_token:
            token = token.head.head
        return self.by_token[token.i]

    def held_in_setting(self, token, before: int) -> str | None:
        """The latest object that a setting's "with" phrase names before token `before`."""
        if not self.is_setting(token):
            return None
        held = [c for w in token.children if w.lower_ == "with" for c in w.children if c.dep_ == "pobj"]
        held = [c for c in held if c.i < before and c.i in self.by_token]
        return self.by_token[max(held, key=lambda c: c.i).i] if held else None

    def is_setting(self, token) -> bool:
        """A place that a picture shows things in ("a kitchen with ..."): it holds no sides."""
        return self.noun_of(self.by_token.get(token.i)) in self.lexicon.settings

    def held_instead(self, phrase: Phrase, subjects: list[str], references: list[str]) -> list[str]:
        """ "a racoon holding an apple over its head", "a turtle with a bubble over its head": an
        object is not placed against its own part, so the apple, the bubble, the object between the
        owner and the phrase, is."""
        reference = next((c for c in self.phrase_objects(phrase) if c.dep_ == "pobj"), None)
        owned = reference is not None and any(
            c.dep_ == "poss" and c.lower_ in self.lexicon.possessive_pronouns for c in reference.children
        )
        if not owned or len(subjects) != 1:
            return subjects
        owner = min((i for i, object_id in self.by_token.items() if object_id == subjects[0]), default=None)
        if owner is None:  # a subject named only by a pronoun
            return subjects
        between = [
            i
            for i, object_id in self.by_token.items()
            if owner < i < phrase.start and object_id not in (*subjects, *references)
        ]
        return [self.by_token[max(between)]] if between else subjects
