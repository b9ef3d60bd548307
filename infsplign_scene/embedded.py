"""The embedded models: Stable Diffusion folders shipped inside the package, each with its preset."""

from __future__ import annotations

from pathlib import Path

from .errors import InfsplignError

MODELS_DIR = Path(__file__).parent / "models"
DEFAULT_MODEL = "nouns"


def embedded_model_names() -> list[str]:
    """The names of the embedded models that ship weights."""
    return sorted(p.name for p in MODELS_DIR.iterdir() if (p / "model_index.json").is_file())


def embedded_model_dir(name: str = DEFAULT_MODEL) -> Path:
    """The folder of an embedded model (loadable by `StableDiffusionPipeline.from_pretrained`)."""
    names = embedded_model_names()
    if name not in names:
        known = ", ".join(names) or "none (reinstall the package)"
        raise InfsplignError(f"no embedded model named {name!r}; embedded models: {known}")
    return MODELS_DIR / name
