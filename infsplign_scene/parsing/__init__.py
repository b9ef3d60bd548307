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

from ..errors import ParseError, SceneGraphError, quoted
from ..scene import SceneGraph
from .rules import lex, parse_controlled

BACKENDS: tuple[str, ...] = ("auto", "rules", "spacy", "llm")


def parse(text: str, backend: str = "auto", **options: Any) -> SceneGraph:
    """Parse a prompt into a `SceneGraph`.

    `options` go to the backend: for ``llm``, ``client=`` (an `LLMClient`) or ``base_url=`` and
    ``model=``; for ``spacy``, ``nlp=`` (a loaded spaCy pipeline).
    """
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

    try:
        controlled = parse_controlled(text)
    except ParseError:
        controlled = None
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
    if controlled is not None and controlled_language(controlled, nlp):
        return controlled
    return parse_dependency(text, nlp=nlp)


def load_scene(scene: SceneGraph | dict | str | Path, backend: str = "auto") -> SceneGraph:
    """A SceneGraph, a dict, a JSON file path, JSON text, or a prompt to parse."""
    if isinstance(scene, (SceneGraph, dict, Path)):
        return SceneGraph.load(scene)
    if not isinstance(scene, str):
        raise ParseError(f"expected a prompt, a scene graph, a dict or a JSON path; got {type(scene).__name__}")
    text = scene.strip()
    if text.startswith("{"):
        return SceneGraph.load(text)
    if looks_like_a_file(text):
        if not Path(text).is_file():
            raise SceneGraphError(f"no such file: {quoted(text)} (a prompt has spaces; a scene graph is a .json file)")
        return SceneGraph.load(Path(text))
    return parse(scene, backend=backend)


def looks_like_a_file(text: str) -> bool:
    """One word ending in .json, or a path: what a user means as a file, never as a prompt."""
    return " " not in text and (text.lower().endswith(".json") or "/" in text or "\\" in text)


__all__ = ["BACKENDS", "lex", "load_scene", "parse", "parse_controlled"]
