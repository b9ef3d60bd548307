"""The spaCy backend: relations from a dependency parse, for free-form prompts.

Pipeline: tokenise; merge the lexicon's multi-word nouns ("fire hydrant", "trash can") into one
token so the tagger and parser see a noun; tag and parse; then

- object mentions are nouns (not position words such as "left", nor "photo" in "a photo of");
  "the X" refers back to the latest X; "it"/"its" to the latest other object ("Below it, ..."
  opening a sentence: the previous main clause's subject); "which"/"that" to the noun its clause
  hangs on;
- relation phrases are found by longest match against the relation lexicon; the reference is the
  prepositional object of the phrase's last word (or of "between"/"among" and its conjunct), the
  subject is found by walking up from the phrase's first word (`attachment`): a noun it modifies
  (the noun its chain of phrases starts from), else the verb's subject (nsubj; through relative
  and participle clauses), its existential attribute ("there is a towel"), or the object of an
  imperative ("paint a river");
- places ("on the left", "in the center of the image") relate the objects placed on opposite
  sides, or name a side of the object before "with"; "on the sofa's right" relates to the possessor;
- a relation word with no object places nothing ("the sky above is clear"), or what a "with"
  phrase holds against its holder ("a lamp with lights above"); "in between" the object before
  it, between the two named before that;
- phrases the five predicates cannot express are reported in `unsupported`.

`extract(doc)` is the pure part: it works on any `Doc` with heads and dependency labels, so tests
can build parses by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from ..errors import ParseError
from ..lexicon import Lexicon, load_lexicon
from ..scene import MAX_RELATIONS, Relation, SceneGraph, UnsupportedRelation
from .lexer import possessive_side
from .readings import Readings, names_an_author
from .shared import between_relations, group_relations, placement_relations, side_relations
from .spacy_model import Analysed, Phrase, analyse_text, load_nlp, phrases_of


@dataclass
class _Extractor(Readings):
    """Relations between the mentions (`Mentions`), from the relation phrases of a parsed `Doc`."""

    # ---- relations ---------------------------------------------------------------------------
    def reference_of(self, phrase: Phrase) -> tuple[list[str], int]:
        """The object(s) after the phrase, and the token index just after the (last) reference.

        A pronoun reference ("on top of it") is returned as [] with its token index negated,
        to be resolved once the subject is known."""
        if phrase.start in self.owners:  # "on the sofa's right"
            return [self.owners[phrase.start]], phrase.end
        objects = self.phrase_objects(phrase)
        sentence_end = self.doc[phrase.start].sent.end
        if objects and objects[0].lower_ in self.lexicon.quantifiers:  # "above both of them": them; "above both"
            objects = [c for of in objects[0].children if of.lower_ == "of" for c in of.children] or objects
        if objects and objects[0].lower_ in self.pronouns | self.lexicon.quantifiers:
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
        if phrase.kind == "REL":
            references += [r for r in self.coordinated(first, sentence_end) if r not in references]
        if phrase.kind == "BETWEEN":
            conjuncts = [c for c in first.conjuncts if self.resolve(c) is not None]
            position = conjuncts[0].i if conjuncts else self.position_after(first.i + 1, sentence_end)
            joined = position is not None and any(t.lower_ in ("and", "&") for t in self.doc[first.i : position])
            if (conjuncts or joined) and self.resolve(self.doc[position]) not in references:
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

    def add_all(self, triples: list[tuple[str, str, str]]) -> None:
        for triple in triples:
            self.add(*triple)

    def subjects_for(
        self, phrase: Phrase, references: list[str], reference_end: int, pronoun: bool = False
    ) -> list[str]:
        """Inverted order first ("above the shelf hangs a clock", "and on its right a can"), then
        the object of a "with" phrase when the reference is a pronoun ("a chair with an umbrella on
        top of it"), then the syntactic subject, then the nearest object before the phrase."""
        sentence = self.doc[phrase.start].sent
        opening = [t for t in self.doc[sentence.start : phrase.start] if not t.is_punct]
        after_conjunction = phrase.start > 0 and self.doc[phrase.start - 1].lower_ in ("and", ",")
        verb_after = self.doc[phrase.start].head.i > phrase.start  # "..., and below the sofa lies a rug"
        if not opening or (after_conjunction and (phrase.kind in ("PREL", "PLACE") or verb_after)):
            verb = self.doc[phrase.start].head  # "Beside the car, swaying on the water, is a boat"
            subject = self.verb_subject(verb) if verb.pos_ in ("VERB", "AUX") else None
            resolved = self.resolve(subject) if subject is not None and subject.i >= reference_end else None
            if resolved is not None and resolved not in references:
                return [resolved]
            following = self.mention_after(reference_end, sentence.end)
            if following is not None and following not in references:
                return [following]
        if (chained := self.chained_subject(phrase)) is not None:
            return [chained]
        if phrase.kind in ("PREL", "PLACE") or pronoun:
            nearest = self.mention_before(phrase.start, sentence.start, set(references))
            if nearest is not None and self.holder_of(nearest, phrase.start) is not None:
                return [self.container_of(nearest, phrase.start)]
        syntactic = [s for s in self.subject_of(phrase) if s not in references]
        if syntactic:
            return syntactic
        nearest = self.mention_before(phrase.start, sentence.start, set(references))
        return [nearest] if nearest is not None else []

    def place(self, phrase: Phrase, subjects: list[str]) -> None:
        """A side of the picture, or of the object before "with"."""
        for subject in subjects:
            holder = self.holder_of(subject, phrase.start)
            if holder is None:
                self.placed.append((subject, phrase.value))
            else:
                self.add_all(side_relations(subject, phrase.value, holder))
            self.latest_subject = subject

    def possessive_sides(self) -> None:
        """ "on the sofa's right", "to the dog's left side": a relation to the possessor, found in the
        words by the lexer's rule (`possessive_side`): the parser often hangs the side elsewhere."""
        self.owners: dict[int, str] = {}
        words, tokens = [], []  # the words as the lexer sees them ("sofa's"), and their first tokens
        for token in self.doc:
            if token.lower_ in ("'s", "’s") and words:
                words[-1] += "'s"
                continue
            words.append(token.lower_)
            tokens.append(token.i)
        for j in range(len(words)):
            found = possessive_side(words, j)
            if found is None or tokens[found[1]] not in self.by_token:
                continue
            preposition = tokens[j]
            self.phrases = [p for p in self.phrases if p.start != preposition]
            self.phrases.append(Phrase("REL", found[0], preposition, preposition + 1))
            self.owners[preposition] = self.by_token[tokens[found[1]]]
        self.phrases.sort(key=lambda p: p.start)

    def extract(self) -> None:
        self.collect_mentions()
        self.possessive_sides()
        self.placed: list[tuple[str, str]] = []
        for phrase in self.phrases:
            if phrase.kind != "PLACE" and self.places_nothing(phrase):
                continue
            if flanked := self.between_adverb(phrase):
                self.add_all(flanked)
                continue
            if self.used_as_adverb(phrase):
                # "nearby" after "with" tells where the holder is: "a doll with a hoody nearby"
                nearby = self.written(self.doc[phrase.start]) == "nearby"
                anchored = None if nearby else self.adverb_anchor(phrase)
                if anchored is not None:
                    self.add(anchored[0], phrase.value, anchored[1])
                    continue
                if nearby or not self.unfinished(phrase):
                    continue  # relative to something unnamed: "the sky above is clear"
            phrase = self.negated(phrase)
            if (side := self.frame_side(phrase)) is not None:  # the kinds that can name one: `frame_of`
                phrase = Phrase("PLACE", side, phrase.start, phrase.end)
            if phrase.kind == "PLACE":
                self.place(phrase, self.subjects_for(phrase, [], phrase.end))
                continue
            if phrase.kind == "SYMM":  # "a cat and a dog next to each other", "... from left to right"
                self.add_all(group_relations(phrase.value, self.subject_of(phrase)))
                continue
            if phrase.kind == "PREL":  # "to its left": the phrase carries its own pronoun
                references, pronoun_at = [], phrase.start
            else:
                references, end = self.reference_of(phrase)
                pronoun_at = -end if end < 0 else None
            if pronoun_at is not None:
                subjects = self.subjects_for(phrase, [], phrase.end, pronoun=True)
                possessive = bool(self.lexicon.possessive_pronouns & set(self.written(self.doc[phrase.start]).split()))
                # the pronoun names the holder ("a truck with a horse on its left", "a table has a
                # lamp above it"; "it" only a holder of its number), else "its" the topic (the latest
                # relation's subject: "a frog sits below a mushroom, and a snail crawls to its
                # right") and "it" the latest other object ("a dog runs below it")
                holder = self.holder_of(subjects[0], phrase.start) if subjects else None
                plural = self.doc[pronoun_at].lower_ in self.lexicon.plural_pronouns | self.lexicon.quantifiers
                if holder is not None and not possessive and self.is_plural(holder) != plural:
                    holder = None  # "a train on tracks with a horse next to it": not the tracks
                target = holder or (self.topic if possessive and self.topic not in subjects else None)
                sentence_start = self.doc[phrase.start].sent.start
                after_semicolon = phrase.start > 0 and self.doc[phrase.start - 1].text == ";"
                if target is None and (phrase.start == sentence_start > 0 or after_semicolon):  # ". Below it, a"
                    target = self.main_subject_before(phrase.start, set(subjects))
                if target is None and plural:
                    target = self.antecedent(pronoun_at, set(subjects), plural=True)
                if target is None and plural:  # "an astronaut riding a horse, the moon above them"
                    references = self.latest_objects(pronoun_at, set(subjects), count=2)
                else:
                    target = target or self.antecedent(pronoun_at, set(subjects))
                    references = [target] if target else []
            else:
                subjects = self.held_instead(phrase, self.subjects_for(phrase, references, end), references)
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
            # "a mouse between two cats", "in the middle of a garden": one object, no two to be between
            one_sided = phrase.kind == "BETWEEN" and len(references) < 2 and phrase.value not in self.lexicon.among
            for subject in subjects:
                if phrase.kind == "UNSUP" or one_sided:
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
                    if len(references) < 2:  # "a deer among the trees": near them; "amid the chaos": nothing
                        self.add_all([(subject, "near", references[0])] if self.is_plural(references[0]) else [])
                        continue
                    self.add_all(between_relations(phrase.value, subject, *references[:2], self.lexicon))
                else:
                    for reference in references:
                        self.add(subject, phrase.value, reference)
        self.add_all(placement_relations(self.placed))


def extract(doc, lexicon: Lexicon | None = None, analysed: Analysed | None = None) -> SceneGraph:
    """Build a scene graph from a parsed spaCy `Doc` (heads, dependency labels, POS tags).

    A hand-built `Doc` works as is (its phrases are found by the lexicon); `analysed` carries the
    proxy words and original spans that `analyse_text` produces."""
    lexicon = lexicon or load_lexicon()
    if analysed is None:
        spans = [(t.idx, t.idx + len(t.text)) for t in doc]
        analysed = Analysed(doc, doc.text, spans, phrases_of(doc))
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


def parse_dependency(text: str, nlp=None, analysed: Analysed | None = None) -> SceneGraph:
    """Parse free text with spaCy's dependency parse (`analysed`: the text's `analyse_text`, when
    already made)."""
    if not isinstance(text, str) or not text.strip():
        raise ParseError("no object is named in the text", str(text), 0)
    analysed = analysed or analyse_text(text, nlp or load_nlp())
    return extract(analysed.doc, analysed=analysed)


def controlled_language(graph: SceneGraph, analysed: Analysed) -> bool:
    """True when every object phrase the grammar found is a plain noun phrase (nouns, adjectives,
    numbers) whose last word is no verb, adverb, preposition, colour or size: then the rules parse is
    trusted; "a kite soaring" (a verb inside a name) and "a gray" (from "a gray and brown cat") are
    not. The tags are read from `analysed`, the text's parse as the spaCy backend reads it."""
    lexicon = load_lexicon()
    allowed = {"NOUN", "PROPN", "ADJ", "NUM", "X"}
    for obj in graph.objects:
        start, end = obj.span or (0, 0)
        span = [analysed.doc[i] for i, (first, last) in enumerate(analysed.spans) if first < end and last > start]
        if not span or any(token.pos_ not in allowed for token in span[:-1]):
            return False
        if span[0].i > 0 and span[0].nbor(-1).lower_ == "by" and names_an_author(span[0].nbor(-1)):
            return False  # "a cat by Picasso": no place
        last = span[-1]
        clause = last.pos_ in ("VERB", "ADV", "ADP", "AUX") or last.dep_ in ("acl", "relcl")  # "a kite soaring"
        if clause or (last.pos_ == "ADJ" and last.lower_ in lexicon.attribute_words):  # not "an orange"
            return False
    return True
