"""The rules backend: the controlled-language parser, text -> `SceneGraph`, offline and deterministic.

Three small stages, each testable alone:

1. `lex` (`lexer`) turns text into phrase tokens by longest match against the relation lexicon
   (`grammar/lexicon.json`) and gives `and`, `which`, lead-ins their role from context;
2. `parse_clauses` (`clauses`): a Lark LALR(1) parser (`grammar/prompt.lark`) builds the clause
   structure;
3. `_GraphBuilder` (here) walks the tree left to right, creating objects, resolving definite
   references ("the cat") and pronouns ("it", "its"), and emitting relations.

The grammar covers the controlled language; free text goes to other backends (see `parse`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lark import Token, Tree
from pydantic import ValidationError

from ..errors import ParseError
from ..lexicon import Lexicon, load_lexicon
from ..scene import MAX_OBJECTS, MAX_RELATIONS, Relation, SceneGraph, SceneObject, UnsupportedRelation
from .clauses import parse_clauses
from .lexer import PhraseToken
from .shared import (
    MAX_TEXT_LENGTH,
    PICTURE_WORDS,
    POSITION_WORDS,
    between_relations,
    definite_referent,
    group_relations,
    new_object_id,
    placement_relations,
    side_relations,
)


@dataclass
class _Mention:
    object_id: str
    start: int


@dataclass
class _GraphBuilder:
    text: str
    lexicon: Lexicon
    objects: list[SceneObject] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    unsupported: list[UnsupportedRelation] = field(default_factory=list)
    mentions: list[_Mention] = field(default_factory=list)
    sentence_objects: set[str] = field(default_factory=set)
    placed: list[tuple[str, str]] = field(default_factory=list)  # (object, side of the picture)
    holder: str | None = None  # "X with ...": X, whose sides a placement in this sentence names
    holder_after_comma: bool = False  # "X, with Y next to Z": Y's relation, not X's
    topic: str | None = None  # the subject of the latest relation: what "its" names when no holder does
    placing: bool = False  # this clause places its subjects in the picture ("a cat on the right")

    # ---- objects -----------------------------------------------------------------------------
    def np(self, tree: Tree, exclude: list[str]) -> str:
        tokens: list[PhraseToken] = [child.value for child in tree.children]
        if tokens[0].kind == "PRON":
            return self._antecedent(exclude, tokens[0])
        determiner = tokens[0] if tokens[0].kind == "DET" else None
        words = tokens[1:] if determiner else tokens
        count = int(determiner.value) if determiner else 1
        if not 1 <= count <= 100:
            raise ParseError(f"a count must be between 1 and 100, got {determiner.text!r}", self.text, determiner.start)
        definite = determiner is not None and determiner.text.lower() == "the"
        start, end = words[0].start, words[-1].end
        name = self.text[start:end]
        noun, attributes = self._head(name.lower(), count)
        if noun.rsplit(" ", 1)[-1] in POSITION_WORDS:
            raise ParseError(f"{name!r} names a place in the picture, not an object", self.text, start)
        if name.lower() in self.lexicon.quantifiers:  # the dependency parse reads "both" as the two before it
            raise ParseError(f"{name!r} stands for objects named before; name them", self.text, start)
        if name.lower() in self.lexicon.reflexives:
            raise ParseError(f"{name!r} relates an object to itself; a relation needs two objects", self.text, start)
        referent = None
        if definite:
            referent = self._definite(noun, attributes, name.lower())
        elif count == 1:
            referent = self._named_in_earlier_sentence(name.lower())
        if referent is not None:
            self.mentions.append(_Mention(referent, start))
            self.sentence_objects.add(referent)
            return referent
        if len(self.objects) >= MAX_OBJECTS:
            raise ParseError(f"more than {MAX_OBJECTS} objects", self.text, start)
        object_id = self._new_id(noun)
        self.objects.append(
            SceneObject(id=object_id, name=name, noun=noun, attributes=attributes, count=count, span=(start, end))
        )
        self.mentions.append(_Mention(object_id, start))
        self.sentence_objects.add(object_id)
        return object_id

    def _head(self, name: str, count: int) -> tuple[str, list[str]]:
        head = self.lexicon.head_noun(name)
        return self.lexicon.singular(head), name.split()[: -len(head.split())]

    def _definite(self, noun: str, attributes: list[str], name: str) -> str | None:
        by_id = {o.id: o for o in self.objects}
        return definite_referent((by_id[m.object_id] for m in reversed(self.mentions)), noun, attributes, name)

    def _named_in_earlier_sentence(self, name: str) -> str | None:
        """ "a dog ..., a dog near a cat": the same name again in a later sentence is the same object,
        but not one placed again ("a man on the left and a man on the right": two men)."""
        placed = {object_id for object_id, _ in self.placed} if self.placing else set()
        for obj in self.objects:
            if obj.name.lower() == name and obj.count == 1 and obj.id not in self.sentence_objects | placed:
                return obj.id
        return None

    def _antecedent(self, exclude: list[str], token: PhraseToken) -> str:
        """The latest object mentioned that agrees in number with the pronoun ("two cats on a sofa
        with a lamp above them": the cats), else the latest."""
        candidates = [m.object_id for m in reversed(self.mentions) if m.object_id not in exclude]
        if not candidates:
            raise ParseError(f"{token.text!r} refers to nothing mentioned before it", self.text, token.start)
        plural = self._plural_pronoun(token)
        by_id = {o.id: o for o in self.objects}
        agreeing = [c for c in candidates if self._is_plural(by_id[c]) == plural]
        return (agreeing or candidates)[0]

    def _held_by(self, np: Tree, exclude: list[str]) -> str | None:
        """ "a table with a bowl on top and a chair on the right side of it": "it" after "X with" is
        X when they agree in number, as the dependency parse reads it."""
        token = np.children[0].value
        if token.kind != "PRON" or self.holder is None or self.holder in exclude:
            return None
        plural = self._plural_pronoun(token)
        holder = next(o for o in self.objects if o.id == self.holder)
        return self.holder if self._is_plural(holder) == plural else None

    def _two_named_before(self, np: Tree, exclude: list[str]) -> list[str]:
        """ "a cat sits left of a dog while a bird flies above them": a plural pronoun with no plural
        object before it names the two objects named last, as the dependency parse reads it."""
        token = np.children[0].value
        if token.kind != "PRON" or not self._plural_pronoun(token):
            return []
        by_id = {o.id: o for o in self.objects}
        candidates = list(dict.fromkeys(m.object_id for m in reversed(self.mentions) if m.object_id not in exclude))
        if len(candidates) < 2 or any(self._is_plural(by_id[c]) for c in candidates):
            return []
        return candidates[1::-1]

    def _plural_pronoun(self, token: PhraseToken) -> bool:
        """ "them", "their": a pronoun that names many."""
        return any(word in self.lexicon.plural_pronouns for word in token.text.lower().split())

    @staticmethod
    def _is_plural(obj: SceneObject) -> bool:
        return obj.count > 1 or obj.name.lower().split()[-1] != (obj.noun or "").split()[-1]

    def _new_id(self, noun: str) -> str:
        return new_object_id(noun, (o.id for o in self.objects))

    # ---- relations ---------------------------------------------------------------------------
    def add(self, subject: str, predicate: str, obj: str, at: int) -> None:
        if subject == obj:
            name = next(o.name for o in self.objects if o.id == subject)
            raise ParseError(
                f"{predicate.replace('_', ' ')!r} relates {name!r} to itself; a relation needs two objects",
                self.text,
                at,
            )
        if len(self.relations) >= MAX_RELATIONS:
            raise ParseError(f"more than {MAX_RELATIONS} relations", self.text, at)
        self.relations.append(Relation(subject=subject, predicate=predicate, object=obj))

    def sentence(self, tree: Tree) -> None:
        clause = tree.children[-1]
        if clause.data == "forward":
            first = next((r for r in clause.children[-1].children if isinstance(r, Tree)), None)
            self.placing = len(clause.children) > 1 and first is not None and first.data == "placement"
            subjects = self.subjects(clause.children[0])
            if (
                self.holder is not None
                and not self.holder_after_comma  # "a tiger on a car, with a flamingo next to a tree"
                and len(clause.children) > 1
                and self._about_holder(clause.children[1])
            ):
                subjects = [self.holder]  # "a vase with flowers next to a clock": the vase
            if len(clause.children) > 1:
                self.predicates(clause.children[1], subjects)
        else:  # inverted: the relation comes first, its subjects after it
            relation, subjects_tree = clause.children[0], clause.children[-1]
            self.placing = relation.data == "placement"
            pending = self.relation_targets(relation, exclude=[])
            subjects = self.subjects(subjects_tree)
            self.apply(relation, pending, subjects)
        self.sentence_objects = set()

    @staticmethod
    def _about_holder(predicates: Tree) -> bool:
        """Whether "X with Y <predicates>" states X's relation: an object relation directly after Y
        whose object is no pronoun ("a sofa with a lamp above it" places the lamp)."""
        first = next((r for r in predicates.children if isinstance(r, Tree)), None)
        if first is None or predicates.children[0] is not first or first.data not in ("rel", "between"):
            return False
        target = first.children[1]
        np = target.children[0] if first.data == "rel" else target
        return not (isinstance(np, Tree) and np.children[0].value.kind == "PRON")

    def subjects(self, tree: Tree) -> list[str]:
        ids = []
        for subject in tree.children:
            if isinstance(subject, Token):
                continue
            object_id = self.np(subject.children[0], exclude=ids)
            ids.append(object_id)
            if len(subject.children) > 2:  # relative clause: "..., which is left of a lamp"
                self.predicates(subject.children[2], [object_id])
        return ids

    def predicates(self, tree: Tree, subjects: list[str]) -> None:
        for relation in tree.children:
            if isinstance(relation, Tree):
                self.apply(relation, self.relation_targets(relation, exclude=subjects), subjects)

    def relation_targets(self, relation: Tree, exclude: list[str]) -> list[str]:
        """Resolve the reference object(s) of a relation (before its subjects, for inverted order)."""
        if relation.data in ("rel", "unsupported"):
            target = relation.children[1]
            if relation.data == "rel" and (pair := self._two_named_before(target.children[0], exclude)):
                return pair
            object_id = self._held_by(target.children[0], exclude) or self.np(target.children[0], exclude)
            if len(target.children) == 2:  # chain: "a moon above a cloud above a hill"
                chained = target.children[1]
                # a chain of one predicate stays a chain; after another predicate or a phrase no
                # predicate expresses, the next phrase is about the subjects ("a cat on a mat
                # next to a dog", "a bird above a box next to a cup")
                same = relation.data == "rel" and self._value(chained) == self._value(relation)
                about = [object_id] if same or not exclude else exclude
                self.apply(chained, self.relation_targets(chained, about), about)
            elif len(target.children) == 3:  # relative clause on the target
                self.predicates(target.children[2], [object_id])
            return [object_id]
        if relation.data == "pronoun_rel":  # "its" after "X with": X ("a desk with a mug to its right")
            if self.holder is not None and self.holder not in exclude:
                return [self.holder]
            token: PhraseToken = relation.children[0].value
            # else the topic, as the dependency backend reads it: "a frog sits below a mushroom, and
            # a snail crawls to its right" (the frog); "to the right of it" the latest object
            possessive = self.lexicon.possessive_pronouns & set(token.text.lower().split())
            if possessive and self.topic is not None and self.topic not in exclude:
                return [self.topic]
            return [self._antecedent(exclude, token)]
        if relation.data == "between":
            return [self.np(relation.children[1], exclude), self.np(relation.children[3], exclude)]
        return []

    @staticmethod
    def _value(relation: Tree) -> str:
        return str(relation.children[0].value.value)

    def apply(self, relation: Tree, targets: list[str], subjects: list[str]) -> None:
        token: PhraseToken = relation.children[0].value
        self.topic = subjects[-1] if subjects else self.topic
        if relation.data == "unsupported":
            for subject in subjects:
                self.unsupported.append(
                    UnsupportedRelation(
                        phrase=token.text, start=token.start, end=token.end, subject=subject, object=targets[0]
                    )
                )
        elif relation.data in ("rel", "pronoun_rel"):
            for subject in subjects:
                for target in targets:
                    self.add(subject, str(token.value), target, token.start)
        elif relation.data == "between":
            first, second = targets
            for subject in subjects:
                for triple in between_relations(str(token.value), subject, first, second, self.lexicon):
                    self.add(*triple, token.start)
        elif relation.data == "placement":
            for subject in subjects:
                if self.holder is None:
                    self.placed.append((subject, str(token.value)))
                else:
                    for triple in side_relations(subject, str(token.value), self.holder):
                        self.add(*triple, token.start)
        elif relation.data == "symmetric":
            if len(subjects) < 2:
                raise ParseError(f"{token.text!r} needs two objects before it", self.text, token.start)
            for triple in group_relations(str(token.value), subjects):
                self.add(*triple, token.start)


def parse_controlled(text: str) -> SceneGraph:
    """Parse controlled-language text into a scene graph.

    Text that names objects but states no relation gives a graph with no relations.
    Raises `ParseError` (with the character position) for anything else it cannot read.
    """
    if not isinstance(text, str):
        raise ParseError(f"expected text, got {type(text).__name__}")
    if len(text) > MAX_TEXT_LENGTH:
        raise ParseError(f"text longer than {MAX_TEXT_LENGTH} characters ({len(text)} given)")
    tree = parse_clauses(text)
    builder = _GraphBuilder(text=text, lexicon=load_lexicon())
    try:
        first = None
        for part in tree.children:
            if isinstance(part, Tree):
                before = len(builder.mentions)
                builder.sentence(part)
                first = builder.mentions[before].object_id if len(builder.mentions) > before else None
            elif part.value.text.lower() == "with":  # "a scene with ...": the picture holds no sides
                holder = next((o for o in builder.objects if o.id == first), None)
                holds = holder is not None and holder.noun not in PICTURE_WORDS | builder.lexicon.settings
                builder.holder = first if holds else None  # "a kitchen with ...": the picture's sides
                builder.holder_after_comma = part.value.value == ","
            elif part.value.text.lower() not in ("and", ","):  # the with-list goes on until then
                builder.holder = None
        for triple in placement_relations(builder.placed):
            builder.add(*triple, 0)
        return SceneGraph(
            prompt=text, objects=builder.objects, relations=builder.relations, unsupported=builder.unsupported
        )
    except ValidationError as error:  # e.g. an object name of over 200 characters
        problem = error.errors()[0]
        raise ParseError(f"the text does not make a valid scene graph: {problem['msg']}", text, 0) from None
