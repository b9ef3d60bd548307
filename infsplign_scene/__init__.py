"""infsplign-scene: put objects where the prompt says, by InfSplign attention guidance.

>>> from infsplign_scene import compose
>>> result = compose("a red circle to the left of a blue square", seed=0)
>>> result.images[0].save("out.png")
"""

from .analysis import Analysis, Conflict, analyze
from .attention import trace
from .compile import Objective, compile_objective
from .errors import ConflictError, InfsplignError, ParseError, SceneGraphError, TokenSpanError, VocabularyError
from .guidance import ComposeResult, GuidanceConfig, ScenePipeline, compose
from .parsing import load_scene, parse
from .scene import PREDICATES, Relation, SceneGraph, SceneObject

__version__ = "0.1.0"

__all__ = [
    "PREDICATES",
    "Analysis",
    "ComposeResult",
    "Conflict",
    "ConflictError",
    "GuidanceConfig",
    "InfsplignError",
    "Objective",
    "ParseError",
    "Relation",
    "SceneGraph",
    "SceneGraphError",
    "ScenePipeline",
    "SceneObject",
    "TokenSpanError",
    "VocabularyError",
    "analyze",
    "compile_objective",
    "compose",
    "load_scene",
    "parse",
    "trace",
]
