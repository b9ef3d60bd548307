"""infsplign-scene: put objects where the prompt says, by InfSplign attention guidance.

>>> from infsplign_scene import compose
>>> result = compose("a red circle to the left of a blue square", seed=0)
>>> result.images[0].save("out.png")

The scene-graph stages (parse, analyze, the settings) import without torch; the sampling ones
(compile_objective, trace, ScenePipeline, compose) load torch and diffusers on first use.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from .analysis import Analysis, Conflict, analyze
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
from .parsing import load_scene, parse
from .relations import PREDICATES, holds
from .scene import Relation, SceneGraph, SceneObject

try:
    __version__ = version("infsplign-scene")
except PackageNotFoundError:  # a source tree that was not installed
    __version__ = "0+unknown"

_LAZY = {
    "ComposeResult": "result",
    "Objective": "compile",
    "ScenePipeline": "guidance",
    "compile_objective": "compile",
    "compose": "guidance",
    "trace": "attention",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
