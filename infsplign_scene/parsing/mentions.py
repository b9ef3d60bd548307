"""Object mentions in a dependency parse: which tokens name objects, the objects they create, and
what a pronoun or "the X" refers to. The base of the dependency backend's extractor."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ParseError
from ..lexicon import Lexicon
from ..scene import MAX_OBJECTS, Relation, SceneObject, UnsupportedRelation
from .shared import FRAME_WORDS, PICTURE_WORDS, POSITION_WORDS, definite_referent, new_object_id, side_in_words
from .spacy_model import Phrase

NOUN_TAGS = frozenset({"NOUN", "PROPN"})
SUBJECT_DEPS = ("nsubj", "nsubjpass")


@dataclass
class Mentions:
    doc: Any
    text: str
    spans: list[tuple[int, int]]  # per token: its characters in `text`
    phrases: list[Phrase]
    lexicon: Lexicon
    objects: list[SceneObject] = field(default_factory=list)
    by_token: dict[int, str] = field(default_factory=dict)  # token index of a mention -> object id
    relations: list[Relation] = field(default_factory=list)
    unsupported: list[UnsupportedRelation] = field(default_factory=list)
    latest_subject: str | None = None

    # ---- mentions ----------------------------------------------------------------------------
    def is_mention(self, token) -> bool:
        """Nouns (or words with an article that the tagger took for adjectives: "a remote"), except
        position words, noun modifiers, clauses, quoted text, "photo" in "a photo of" and "pair" in
        "a pair of"."""
        if token.is_punct or token.lower_ in POSITION_WORDS or token.dep_ in ("acl", "relcl", "amod"):
            return False
        if self.in_quotes(token):
            return False  # quoted text names no object: "a sign that says 'stop'"
        if token.dep_ == "advcl" and token.pos_ not in NOUN_TAGS:  # a clause; a noun is a fragment's subject
            return False
        if token.dep_ == "compound" and not self.punctuated(token.i, token.head.i):  # not "post. bike"
            return False
        if token.dep_ == "nmod" and self.modifies_next_noun(token):  # "neon" in "a neon green toothbrush"
            return False
        following = self.doc[token.i + 1].lower_ if token.i + 1 < len(self.doc) else ""
        if self.is_quantity(token) and following == "of":
            return False
        if token.lower_ in self.lexicon.units and any(c.dep_ == "nummod" for c in token.children):
            return False  # a measure: "a parking meter with nine minutes remaining"
        if self.written(token) in PICTURE_WORDS and following in ("of", "with"):
            return False
        if self.frame_of(token) is not None:
            return False  # "at the bottom of this image": a side of the picture
        if any(c.dep_ == "dobj" for c in token.children):
            return False  # a verb the tagger took for a noun: "breathing flames"
        if any(c.lower_ == "no" for c in token.children) or (token.dep_ == "pobj" and token.head.lower_ == "without"):
            return False  # absent from the scene: "a plate with no bananas", "a glass without juice"
        if token.pos_ in NOUN_TAGS or self.stands_for_noun(token):
            return True
        # modifiers with no noun between them and the token: in "A dog looking sad" the article is the dog's
        modifiers = [
            c
            for c in token.children
            if c.dep_ in ("amod", "det") and not any(t.pos_ in NOUN_TAGS for t in self.doc[c.i + 1 : token.i])
        ]
        if token.tag_ == "VBG" and modifiers:
            return True  # a gerund used as a noun: "blue writing"
        if (
            token.i == token.sent.start
            and token.i + 1 in self.phrase_tokens
            and (token.pos_ in ("VERB", "AUX", "ADJ") or (token.pos_ == "ADV" and token.dep_ == "ROOT"))
        ):
            return True  # a telegraphic caption's first word: "building under sky", "can near monitor"
        ends_sentence = token.i + 1 == token.sent.end or self.doc[token.i + 1].is_punct
        after_phrase = token.head.i in self.phrase_tokens if token.dep_ == "pobj" else token.i - 1 in self.phrase_tokens
        if token.pos_ in ("ADV", "VERB", "AUX") and after_phrase and (token.dep_ == "pobj" or ends_sentence):
            return True  # "cabinet above oven", "sky above building", "umbrella next to can": tagged otherwise
        has_article = any(c.dep_ == "det" and c.lower_ in ("a", "an", "the") for c in modifiers)
        quoting = token.i + 1 < len(self.doc) and self.doc[token.i + 1].is_quote  # "a blue '5'": quoted text
        return (
            has_article
            and not quoting
            and not (token.lower_ in self.lexicon.attribute_words and self.noun_follows(token))
            and not self.adjectives_continue(token)
            and token.pos_ in ("ADJ", "VERB", "X")
            and token.dep_ in ("pobj", "dobj", "nsubj", "attr", "ROOT", "conj", "appos")
        )

    def modifies_next_noun(self, token) -> bool:
        """Whether only other modifiers of the same noun stand between the token and that noun."""
        head = token.head
        between = self.doc[token.i + 1 : head.i]
        return (
            token.i < head.i
            and head.pos_ in NOUN_TAGS
            and all(t.head.i == head.i and t.dep_ in ("amod", "compound", "nmod") for t in between)
            and not any(t.i in self.phrase_tokens for t in between)
        )

    def stands_for_noun(self, token) -> bool:
        """ "one" after an article or a modifier ("a green apple above a red one", "the blue one"):
        another of a kind named before."""
        modified = any(c.dep_ in ("det", "amod") and c.i < token.i for c in token.children)
        return token.lower_ == "one" and token.dep_ != "nummod" and modified and bool(self.objects)

    def is_quantity(self, token) -> bool:
        """ "pair" in "a pair of shoes", "pairs" in "five pairs of shoes"."""
        return token.lower_ in self.lexicon.quantity_nouns or token.lemma_.lower() in self.lexicon.quantity_nouns

    def noun_follows(self, token) -> bool:
        """Whether a noun follows in the token's phrase (before punctuation or a relation phrase):
        then a colour with an article is that noun's ("under a red and blue striped umbrella")."""
        phrase_tokens = self.phrase_tokens  # a property that builds the set
        for t in self.doc[token.i + 1 : token.sent.end]:
            if t.is_punct or t.i in phrase_tokens:
                return False
            if t.pos_ in NOUN_TAGS:
                return True
        return False

    def adjectives_continue(self, token) -> bool:
        """Whether a comma and more modifiers lead from the token to its noun ("a vibrant, orange
        tangerine"), not to another phrase ("a remote, a cup")."""
        after = self.doc[token.i + 1 : token.i + 5]
        if len(after) < 2 or after[0].text != ",":
            return False
        for t in after[1:]:
            if t.pos_ in NOUN_TAGS:
                return True
            if t.pos_ in ("DET", "NUM", "PUNCT", "ADP", "CCONJ", "PRON") or t.i in self.phrase_tokens:
                return False
        return False

    def in_quotes(self, token) -> bool:
        """Whether the token stands between an opening quote mark (space before it) and a later
        one in its sentence; an apostrophe that ends a word ("the dogs' bowl") opens nothing."""
        opened = False
        for t in self.doc[token.sent.start : token.i]:
            if t.is_quote:
                opened = not opened and (t.i == 0 or bool(self.doc[t.i - 1].whitespace_))
        return opened and any(t.is_quote for t in self.doc[token.i + 1 : token.sent.end])

    def of_object(self, token):
        """The noun after "of" that hangs on the token ("a photo of <noun>"), or None."""
        return next((c for p in token.children if p.lower_ == "of" for c in p.children if c.dep_ == "pobj"), None)

    def written(self, token) -> str:
        """The token's words as written, with a hyphenated first part: "close-up" for "up", "close
        up" for the one word that stands for both."""
        word = self.text[slice(*self.spans[token.i])].lower()
        if token.i >= 2 and self.doc[token.i - 1].text == "-" and not self.doc[token.i - 2].whitespace_:
            return f"{self.text[slice(*self.spans[token.i - 2])].lower()}-{word}"
        return word

    def frame_of(self, token) -> str | None:
        """The side of the picture that a phrase ending in this token names ("at the bottom of this
        image": bottom), when the token is the picture itself."""
        phrase = next((p for p in self.phrases if p.start == token.head.i), None)
        if token.dep_ != "pobj" or token.lower_ not in FRAME_WORDS or phrase is None:
            return None
        if phrase.kind not in ("REL", "UNSUP", "BETWEEN"):  # "in the center of this image"
            return None
        words = self.text[self.spans[phrase.start][0] : self.spans[phrase.end - 1][1]].lower().split()
        return side_in_words(words)  # None for "above the picture": a picture on a wall

    def collect_mentions(self) -> None:
        phrase_tokens = self.phrase_tokens  # a property that builds the set
        for token in self.doc:
            if not self.is_mention(token):
                continue
            modifiers = [
                c.i
                for c in token.children
                if c.dep_ in ("amod", "compound", "nmod")
                and c.i < token.i
                and not self.punctuated(c.i, token.i)
                and not phrase_tokens.intersection(range(c.i, token.i))  # a name holds no relation phrase
            ]
            start = min([token.i, *modifiers])
            count = 1
            for child in token.children:
                if child.dep_ == "nummod":
                    written = child.text
                    number = int(written) if written.isascii() and written.isdigit() else 1  # not "²" or "①"
                    count = self.lexicon.counts.get(child.lower_, number)
            definite = any(c.lower_ == "the" for c in token.children if c.dep_ == "det")
            head_text = self.text[slice(*self.spans[token.i])].lower()
            plural = token.tag_ in ("NNS", "NNPS") and head_text not in self.lexicon.singular_nouns
            if self.stands_for_noun(token):  # "a red one": of the latest kind named outside a phrase
                named = [self.by_token[i] for i in sorted(self.by_token) if self.doc[i].dep_ != "pobj"]
                noun = self.noun_of((named or [self.objects[-1].id])[-1]) or head_text
            elif " " in head_text:  # a multi-word noun is one token whose lemma is its stand-in word
                noun = self.lexicon.singular(head_text)
            else:
                noun = token.lemma_.lower() if plural else head_text
            attributes = [self.text[slice(*self.spans[i])].lower() for i in range(start, token.i)]
            name = self.text[self.spans[start][0] : self.spans[token.i][1]].lower()
            referent = definite_referent(reversed(self.objects), noun, attributes, name) if definite else None
            if referent is None:
                referent = self.new_object((self.spans[start][0], self.spans[token.i][1]), noun, attributes, count)
            self.by_token[token.i] = referent

    @property
    def phrase_tokens(self) -> set[int]:
        return {phrase.start for phrase in self.phrases}

    def punctuated(self, start: int, end: int) -> bool:
        """Whether punctuation stands between two tokens ("post. bike" is no compound)."""
        return any(self.doc[i].is_punct for i in range(start + 1, end))

    @property
    def pronouns(self) -> frozenset[str]:
        return self.lexicon.pronouns | self.lexicon.possessive_pronouns

    def new_object(self, span: tuple[int, int], noun: str, attributes: list[str], count: int) -> str:
        if len(self.objects) >= MAX_OBJECTS:
            raise ParseError(f"more than {MAX_OBJECTS} objects", self.text, span[0])
        object_id = new_object_id(noun, (o.id for o in self.objects))
        self.objects.append(
            SceneObject(
                id=object_id,
                name=self.text[span[0] : span[1]],
                noun=noun,
                attributes=attributes,
                count=max(1, min(count, 100)),
                span=span,
            )
        )
        return object_id

    def antecedent(self, before: int, exclude: set[str], plural: bool = False) -> str | None:
        """The latest object before token `before` that agrees in number with the pronoun ("a train
        on tracks with a horse next to it": the train); the latest of any number when none does. A
        personal pronoun ("her", "him") takes the latest object that was a sentence's subject."""
        pronoun = self.doc[before] if before < len(self.doc) else None
        if pronoun is not None and pronoun.lower_ in self.lexicon.personal_pronouns and pronoun.dep_ != "poss":
            subjects = [
                self.by_token[i]
                for i in sorted(self.by_token, reverse=True)
                if i < before and self.doc[i].dep_ in SUBJECT_DEPS and self.by_token[i] not in exclude
            ]
            people = [s for s in subjects if self.noun_of(s) in self.lexicon.people]  # "Her dog ... beside her"
            if subjects:  # "The woman swings her racket. The dirt under her": not the racket
                return (people or subjects)[0]
        candidates = [
            (index, self.by_token[index])
            for index in sorted(self.by_token, reverse=True)
            if index < before and self.by_token[index] not in exclude
        ]
        for index, object_id in candidates:
            if plural == self.is_plural(object_id, index):
                return object_id
        return None if plural or not candidates else candidates[0][1]

    def noun_of(self, object_id: str | None) -> str:
        """The object's noun in lower case; "" for no object."""
        return next(((o.noun or "").lower() for o in self.objects if o.id == object_id), "")

    def main_subject_before(self, index: int, exclude: set[str]) -> str | None:
        """The latest subject of a main clause (of the root verb or one coordinated with it, or
        what "there is" introduces) before token `index`: what "Below it, ..." at the start of the
        next sentence is about ("A kite soars, its tail in the wind. Below it, ...": the kite)."""
        for i in sorted(self.by_token, reverse=True):
            token, verb = self.doc[i], self.doc[i].head
            while verb.dep_ == "conj" and verb.head.i != verb.i:
                verb = verb.head
            existential = token.dep_ == "attr" and any(c.dep_ == "expl" for c in token.head.children)
            subject = token.dep_ in SUBJECT_DEPS or existential
            main = verb.dep_ == "ROOT" or (verb.dep_ == "ccomp" and verb.head.i > index)  # "...; beside it is"
            if i < index and subject and main and self.by_token[i] not in exclude:
                return self.by_token[i]
        return None

    def latest_objects(self, before: int, exclude: set[str], count: int) -> list[str]:
        """The `count` latest objects mentioned before token `before`, in the order named: what
        "them" names when no one object is many."""
        found: list[str] = []
        for index in sorted(self.by_token, reverse=True):
            object_id = self.by_token[index]
            if index < before and object_id not in exclude and object_id not in found:
                found.append(object_id)
            if len(found) == count:
                break
        return found[::-1] if len(found) == count else []

    def is_plural(self, object_id: str, index: int | None = None) -> bool:
        """Whether an object (as mentioned at token `index`, else first) is many: counted, a plural
        noun or a collective ("a couple ... above them")."""
        if index is None:
            index = min((i for i, mentioned in self.by_token.items() if mentioned == object_id), default=None)
        count = next(o.count for o in self.objects if o.id == object_id)
        token = self.doc[index] if index is not None else None
        return count > 1 or (token is not None and (token.tag_ in ("NNS", "NNPS") or self.is_quantity(token)))

    def resolve(self, token, exclude: set[str] = frozenset()) -> str | None:
        """The object a token stands for (a mention, a pronoun, a relative pronoun)."""
        if token.i in self.by_token:
            return self.by_token[token.i]
        if self.is_quantity(token) or self.written(token) in PICTURE_WORDS:
            of = self.of_object(token)  # "a pair of scissors", "a close-up of two chameleons"
            return self.resolve(of, exclude) if of is not None else None
        if token.lower_ in self.lexicon.relative_pronouns:
            clause = token.head
            return self.resolve(clause.head, exclude) if clause.dep_ in ("relcl", "acl") else None
        if token.lower_ in self.lexicon.quantifiers and token.dep_ in SUBJECT_DEPS:  # "both sitting under"
            return self.antecedent(token.i, set(exclude), plural=True) or self.antecedent(token.i, set(exclude))
        if token.lower_ in self.pronouns:
            opening = token.dep_ in SUBJECT_DEPS and token.sent.start > 0
            if opening:  # "A map ... . It is on a table": the previous sentence's first object
                earlier = [
                    i for i in self.by_token if self.doc[i].sent.start == self.doc[token.sent.start - 1].sent.start
                ]
                if earlier and self.by_token[min(earlier)] not in exclude:
                    return self.by_token[min(earlier)]
            if token.lower_ in self.lexicon.plural_pronouns:  # "under them": the latest plural object
                plural = self.antecedent(token.i, set(exclude), plural=True)
                if plural is not None:
                    return plural
            return self.antecedent(token.i, set(exclude))
        return None
