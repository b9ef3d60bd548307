"""infsplign-scene: put objects where the prompt says, by InfSplign attention guidance."""

from .analysis import Analysis, Conflict, analyze
from .errors import ConflictError, InfsplignError, ParseError, SceneGraphError, TokenSpanError, VocabularyError
from .parsing import parse
from .scene import PREDICATES, Relation, SceneGraph, SceneObject

__all__ = [
    "PREDICATES",
    "Analysis",
    "Conflict",
    "ConflictError",
    "InfsplignError",
    "ParseError",
    "Relation",
    "SceneGraph",
    "SceneGraphError",
    "SceneObject",
    "TokenSpanError",
    "VocabularyError",
    "analyze",
    "parse",
]
