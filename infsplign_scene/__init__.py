"""infsplign-scene: put objects where the prompt says, by InfSplign attention guidance.

>>> from infsplign_scene import compose
>>> result = compose("a red circle to the left of a blue square", seed=0)
>>> result.images[0].save("out.png")
"""

from .analysis import Analysis, Conflict, analyze
from .attention import trace
from .compile import Objective, compile_objective
from .config import GuidanceConfig, Preset, SamplingDefaults
from .embedded import embedded_model_dir, embedded_model_names
from .errors import (
    ConfigError,
    ConflictError,
    InfsplignError,
    ParseError,
    SceneGraphError,
    TokenSpanError,
    VocabularyError,
)
from .guidance import ScenePipeline, compose
from .parsing import load_scene, parse
from .relations import PREDICATES, holds
from .result import ComposeResult
from .scene import Relation, SceneGraph, SceneObject

__version__ = "0.1.0"

__all__ = [
    "PREDICATES",
    "Analysis",
    "ComposeResult",
    "ConfigError",
    "Conflict",
    "ConflictError",
    "GuidanceConfig",
    "InfsplignError",
    "Objective",
    "ParseError",
    "Preset",
    "Relation",
    "SamplingDefaults",
    "SceneGraph",
    "SceneGraphError",
    "ScenePipeline",
    "SceneObject",
    "TokenSpanError",
    "VocabularyError",
    "analyze",
    "compile_objective",
    "compose",
    "embedded_model_dir",
    "embedded_model_names",
    "holds",
    "load_scene",
    "parse",
    "trace",
]
