"""Text -> `SceneGraph`, behind one `parse()` with pluggable backends.

- ``rules``: the controlled-language grammar (`grammar/prompt.lark`), offline and exact;
- ``spacy``: relation extraction from a dependency parse, for free text (`[nlp]` extra);
- ``llm``: a language model answering with JSON constrained by the `SceneGraph` schema;
- ``auto``: rules when the text is in the controlled language, else spaCy when a model is
  installed, else rules with a warning. The LLM is used only when asked for.

All backends share the relation lexicon in `grammar/lexicon.json`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from ..errors import ParseError, ParseWarning, SceneGraphError, quoted
from ..lexicon import load_lexicon
from ..scene import SceneGraph
from .lexer import lex
from .rules import parse_controlled
from .shared import MAX_TEXT_LENGTH

BACKENDS: tuple[str, ...] = ("auto", "rules", "spacy", "llm")


def parse(text: str, backend: str = "auto", strict: bool = False, **options: Any) -> SceneGraph:
    """Parse a prompt into a `SceneGraph`.

    Text longer than `MAX_TEXT_LENGTH` or not valid Unicode is refused before any backend runs.
    What the graph cannot hold is never dropped silently: each spatial phrase that no predicate
    expresses ("on", "behind") is in `graph.unsupported` and gets a `ParseWarning` naming it and
    its position, and so does text in which no relation was found; `strict=True` makes both a
    `ParseError`. `options` go to the backend: for ``llm``, ``client=`` (an `LLMClient`) or
    ``base_url=`` and ``model=``; for ``spacy``, ``nlp=`` (a loaded spaCy pipeline).
    """
    check_text(text)
    graph = _parse_with(text, backend, **options)
    for message, position in unparsed_parts(graph):
        if strict:
            raise ParseError(message, text, position)
        warnings.warn(ParseWarning(message), stacklevel=2)
    return graph


def unparsed_parts(graph: SceneGraph) -> list[tuple[str, int | None]]:
    """(message, character position) for each part of the text that the graph does not express."""
    parts: list[tuple[str, int | None]] = [
        (
            f"{item.phrase!r} at character {item.start} is spatial but no predicate expresses it; it is not guided",
            item.start,
        )
        for item in graph.unsupported
    ]
    if not graph.relations and not graph.unsupported and len((graph.prompt or "").split()) > 3:
        parts.append(("no spatial relation was found in the text; nothing will be guided", None))
    return parts


def check_text(text: Any) -> None:
    """Refuse what no backend should see: not text, longer than `MAX_TEXT_LENGTH`, not valid Unicode."""
    if not isinstance(text, str):
        raise ParseError(f"expected text, got {type(text).__name__}")
    if len(text) > MAX_TEXT_LENGTH:
        raise ParseError(f"text longer than {MAX_TEXT_LENGTH} characters ({len(text)} given)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ParseError("the text is not valid Unicode (a lone surrogate)", text, error.start) from None


def _parse_with(text: str, backend: str, **options: Any) -> SceneGraph:
    if backend == "rules":
        return parse_controlled(text)
    if backend == "spacy":
        from .dependency import parse_dependency

        return parse_dependency(text, **options)
    if backend == "llm":
        from .llm import parse_llm

        return parse_llm(text, **options)
    if backend != "auto":
        raise ParseError(f"unknown parser backend {backend!r}; available: {', '.join(BACKENDS)}")
    return _parse_auto(text, **options)


def _parse_auto(text: str, **options: Any) -> SceneGraph:
    from .dependency import controlled_language, load_nlp, parse_dependency
    from .spacy_model import analyse_text

    try:
        controlled = parse_controlled(text)
    except ParseError:
        controlled = None
    if controlled is not None and compares(controlled):
        controlled = None  # "a contrast between a cat and a dog" places nothing: the dependency parse knows
    if controlled is not None and plain_names(controlled) and not stray_objects(controlled):
        return controlled  # nothing for a tagger to doubt: no need to load spaCy
    nlp = options.get("nlp") or load_nlp(required=False)
    if nlp is None:
        if controlled is None:
            raise ParseError(
                "the text is not in the controlled language, and no spaCy model is installed for free text "
                "(pip install 'infsplign-scene[nlp]')",
                text,
                0,
            )
        if not controlled.relations and len(text.split()) > 6:
            warnings.warn(
                "parsed free text with the rules backend and found no relation; install a spaCy model "
                "(pip install 'infsplign-scene[nlp]') for free-form prompts",
                stacklevel=3,
            )
        return controlled
    analysed = analyse_text(text, nlp)  # one parse for the check and for the spaCy backend
    if controlled is not None and not stray_objects(controlled) and controlled_language(controlled, analysed):
        return controlled
    return parse_dependency(text, nlp=nlp, analysed=analysed)


def compares(graph: SceneGraph) -> bool:
    """Whether an object is a comparison ("a contrast between ..."), which the grammar reads as a thing."""
    comparisons = load_lexicon().comparisons
    return any((obj.noun or "").lower() in comparisons for obj in graph.objects)


def stray_objects(graph: SceneGraph) -> bool:
    """Whether the grammar related some objects and left others out: free text that it read only in
    part ("next to a hat, a book and a blanket"), for the dependency parse to read whole."""
    if not graph.relations:
        return False
    related = {o for r in graph.relations for o in (r.subject, r.object)}
    related |= {o for u in graph.unsupported for o in (u.subject, u.object)}
    settings = load_lexicon().settings  # "a kitchen with a stove next to a fridge": the kitchen is the place
    return any(obj.id not in related and (obj.noun or "").lower() not in settings for obj in graph.objects)


def plain_names(graph: SceneGraph) -> bool:
    """Whether every object is named by a noun with at most colour and size words before it
    ("cat", "red circle", "small teddy bear"), and no colour or size word stands alone before
    "and" or a comma ("a gray and brown cat", where "an orange and a pear" names the fruit: the
    tagger tells), and no capitalised name follows "by" (an author or a place): then the grammar's
    parse needs no tagger's check."""
    lexicon = load_lexicon()
    attributes = lexicon.attribute_words
    text = graph.prompt or ""
    for obj in graph.objects:
        words = obj.name.lower().split()
        head = len(lexicon.head_noun(obj.name).split())
        if len(words) > 3 + head - 1 or not all(word in attributes for word in words[:-head]):
            return False
        if len(words[-1]) > 4 and words[-1].endswith(("ed", "ing")):  # perhaps a participle, not "bed"
            return False  # "rocks organized by colour": the tagger tells
        following = text[obj.span[1] :].lstrip().lower() if obj.span else ""
        if words[-1] in attributes and following.startswith(("and ", ",")):
            return False
        preceding = text[: obj.span[0]].rstrip().lower() if obj.span else ""
        if preceding.endswith(" by") and obj.name[:1].isupper():
            return False  # "a cat by Picasso": an author or a place ("by Lake Tahoe"): the tagger tells
    return True


def load_scene(scene: SceneGraph | dict | str | Path, backend: str = "auto", strict: bool = False) -> SceneGraph:
    """A SceneGraph, a dict, a JSON file path, JSON text, or a prompt to parse (`parse`)."""
    if isinstance(scene, (SceneGraph, dict, Path)):
        return SceneGraph.load(scene)
    if not isinstance(scene, str):
        raise ParseError(f"expected a prompt, a scene graph, a dict or a JSON path; got {type(scene).__name__}")
    text = scene.strip()
    if text.startswith("{"):
        return SceneGraph.load(text)
    if looks_like_a_file(text):
        if not is_file(Path(text)):
            raise SceneGraphError(f"no such file: {quoted(text)} (a prompt has spaces; a scene graph is a .json file)")
        return SceneGraph.load(Path(text))
    return parse(scene, backend=backend, strict=strict)


def is_file(path: Path) -> bool:
    """`path.is_file()`, False for a name the system refuses (too long, a NUL byte)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def looks_like_a_file(text: str) -> bool:
    """One word ending in .json, or a path: what a user means as a file, never as a prompt."""
    return " " not in text and (text.lower().endswith(".json") or "/" in text or "\\" in text)


__all__ = ["BACKENDS", "MAX_TEXT_LENGTH", "check_text", "lex", "load_scene", "parse", "parse_controlled"]
