"""The scene-graph model: objects, relations between them, and the prompt they came from.

This is the user-facing JSON format (see `SceneGraph.model_json_schema()`) and what every parser
returns. Objects are found in the prompt by their `name` (or an explicit character `span`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import SceneGraphError, format_validation_error, quoted
from .lexicon import load_lexicon
from .relations import PREDICATES, TABLE, Predicate, canonical_triple

MAX_OBJECTS = 32
MAX_RELATIONS = 128
MAX_JSON_CHARACTERS = 1_000_000


def name_occurrences(prompt: str, name: str) -> Iterator[tuple[int, int]]:
    """Character spans where `name` occurs in the prompt as whole words, case-blind."""
    for match in re.finditer(rf"(?<!\w){re.escape(name)}(?!\w)", prompt, re.IGNORECASE):
        yield match.span()


class SceneObject(BaseModel):
    """One object of the scene. `name` is the phrase that names it in the prompt."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9_\-]+$", max_length=64, description="Unique identifier.")
    name: str = Field(min_length=1, max_length=200, description="Phrase naming the object in the prompt.")
    noun: str | None = Field(
        None, description="Head noun; defaults to the last word of `name`, or the last two for a compound noun."
    )
    attributes: list[str] = Field(default_factory=list, description="Modifiers such as colour or size.")
    count: int = Field(1, ge=1, le=100, description="How many instances the phrase asks for.")
    span: tuple[int, int] | None = Field(
        None, description="Character offsets [start, end) of `name` in the prompt; found by search when absent."
    )

    @model_validator(mode="after")
    def _default_noun(self) -> SceneObject:
        if self.noun is None:
            self.noun = load_lexicon().head_noun(self.name)
        return self


class Relation(BaseModel):
    """`subject predicate object`, e.g. cat left_of dog. `weight` scales its loss."""

    model_config = ConfigDict(extra="forbid")

    subject: str
    predicate: Predicate
    object: str
    weight: float = Field(1.0, description="Positive, finite weight of this relation's loss.")

    @field_validator("predicate", mode="before")
    @classmethod
    def _known_predicate(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower().replace(" ", "_").replace("-", "_")
            if value not in PREDICATES:
                raise ValueError(f"unknown predicate {value!r}; supported predicates are {', '.join(PREDICATES)}")
        return value

    @field_validator("weight")
    @classmethod
    def _finite_positive(cls, value: float) -> float:
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"weight must be finite and > 0, got {value}")
        return value

    def __str__(self) -> str:
        return f"{self.subject} {self.predicate} {self.object}"


class UnsupportedRelation(BaseModel):
    """A spatial phrase the five predicates cannot express (behind, in front of, on, inside ...)."""

    model_config = ConfigDict(extra="forbid")

    phrase: str
    start: int
    end: int
    subject: str | None = None
    object: str | None = None


class SceneGraph(BaseModel):
    """Objects and the spatial relations between them."""

    model_config = ConfigDict(extra="forbid")

    prompt: str | None = Field(None, description="The text prompt; written from the graph when absent.")
    objects: list[SceneObject] = Field(min_length=1, max_length=MAX_OBJECTS)
    relations: list[Relation] = Field(default_factory=list, max_length=MAX_RELATIONS)
    unsupported: list[UnsupportedRelation] = Field(
        default_factory=list, description="Spatial phrases found in the text that no predicate expresses."
    )

    @model_validator(mode="after")
    def _check_graph(self) -> SceneGraph:
        ids = [o.id for o in self.objects]
        seen: set[str] = set()
        for object_id in ids:
            if object_id in seen:
                raise ValueError(f"duplicate object id {object_id!r}")
            seen.add(object_id)
        for index, relation in enumerate(self.relations):
            for role in ("subject", "object"):
                ref = getattr(relation, role)
                if ref not in seen:
                    raise ValueError(
                        f"relation {index} ({relation}) has unknown {role} {ref!r}; known ids: {', '.join(ids)}"
                    )
            if relation.subject == relation.object:
                raise ValueError(f"relation {index} ({relation}) relates object {relation.subject!r} to itself")
        if self.prompt is None:
            self.prompt, spans = _write_prompt(self)
            for obj, span in zip(self.objects, spans, strict=False):
                obj.span = span
        else:
            self._check_names_in_prompt()
        return self

    def _check_names_in_prompt(self) -> None:
        assert self.prompt is not None
        for obj in self.objects:  # slice first, then compare case-blind: lower() can change a length ("İ")
            if obj.span is not None:
                start, end = obj.span
                inside = 0 <= start < end <= len(self.prompt)
                if not inside or self.prompt[start:end].casefold() != obj.name.casefold():
                    raise ValueError(
                        f"object {obj.id!r}: span {list(obj.span)} does not cover its name {obj.name!r} in the prompt"
                    )
            elif not any(name_occurrences(self.prompt, obj.name)):
                raise ValueError(
                    f"object {obj.id!r}: its name {obj.name!r} does not occur in the prompt {quoted(self.prompt)}"
                )

    # ---- convenience -------------------------------------------------------------------------
    def naming_objects_only(self) -> SceneGraph:
        """This graph with a prompt that names its objects and nothing else ("a red circle and a
        blue square"), spans set: the form of the embedded model's training captions. The
        relations are kept and reach the sampler through the objective alone."""
        text, objects = "", []
        for obj in self.objects:
            text += (" and " if text else "") + _article(obj.name)
            objects.append(obj.model_copy(update={"span": (len(text), len(text) + len(obj.name))}))
            text += obj.name
        return self.model_copy(update={"prompt": text, "objects": objects})

    def object_by_id(self, object_id: str) -> SceneObject:
        for obj in self.objects:
            if obj.id == object_id:
                return obj
        raise SceneGraphError(f"no object with id {object_id!r}")

    @classmethod
    def load(cls, source: SceneGraph | dict | str | Path) -> SceneGraph:
        """Build a graph from a graph, a dict, a JSON string or a path to a JSON file.

        Every problem becomes a `SceneGraphError`: a missing, oversized or non-UTF-8 file, invalid
        or too deeply nested JSON, a field that fails validation (the message names it).
        """
        if isinstance(source, SceneGraph):
            return source
        try:
            if isinstance(source, dict):
                return cls.model_validate(source)
            text = str(source)
            if isinstance(source, Path) or (not text.lstrip().startswith("{") and text.endswith(".json")):
                text = _read_graph_file(Path(text))
            if len(text) > MAX_JSON_CHARACTERS:
                raise SceneGraphError(f"scene-graph JSON longer than {MAX_JSON_CHARACTERS} characters")
            data = json.loads(text)
            if not isinstance(data, dict):
                raise SceneGraphError(f"a scene graph is a JSON object, got a JSON {type(data).__name__}")
            return cls.model_validate(data)
        except json.JSONDecodeError as error:
            raise SceneGraphError(f"invalid JSON at line {error.lineno} column {error.colno}: {error.msg}") from None
        except RecursionError:
            raise SceneGraphError("the JSON is nested too deeply to be a scene graph") from None
        except ValidationError as error:
            raise SceneGraphError(format_validation_error(error, "scene graph")) from None
        except ValueError as error:  # e.g. an integer of thousands of digits
            if isinstance(error, SceneGraphError):
                raise
            raise SceneGraphError(f"invalid JSON: {error}") from None

    def triples(self) -> set[tuple[str, str, str]]:
        """Relations as (subject name, predicate, object name), with inverses normalised."""
        names = {o.id: o.name for o in self.objects}
        return {canonical_triple(names[r.subject], r.predicate, names[r.object]) for r in self.relations}


def _write_prompt(graph: SceneGraph) -> tuple[str, list[tuple[int, int]]]:
    """Write "a cat to the left of a dog, a lamp above the cat" and each object's first-mention span."""
    spans: dict[str, tuple[int, int]] = {}
    by_id = {o.id: o for o in graph.objects}
    text = ""

    def mention(object_id: str) -> None:
        nonlocal text
        obj = by_id[object_id]
        text += "the " if object_id in spans else _article(obj.name)
        if object_id not in spans:
            spans[object_id] = (len(text), len(text) + len(obj.name))
        text += obj.name

    for relation in graph.relations:
        if text:
            text += ", "
        mention(relation.subject)
        text += " " + TABLE[relation.predicate].phrase + " "
        mention(relation.object)
    for obj in graph.objects:
        if obj.id not in spans:
            text += ", " if text else ""
            mention(obj.id)
    return text, [spans[o.id] for o in graph.objects]


def _article(name: str) -> str:
    return "an " if name[0].lower() in "aeiou" else "a "


def _read_graph_file(path: Path) -> str:
    try:
        found = path.is_file()
    except (OSError, ValueError):  # a name the system refuses: too long, a NUL byte
        found = False
    if not found:
        raise SceneGraphError(f"scene-graph file not found: {quoted(str(path))}")
    if path.stat().st_size > MAX_JSON_CHARACTERS * 4:
        raise SceneGraphError(f"scene-graph file {quoted(str(path))} is larger than {MAX_JSON_CHARACTERS * 4} bytes")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise SceneGraphError(f"scene-graph file {quoted(str(path))} is not UTF-8 (byte {error.start})") from None
