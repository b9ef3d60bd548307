"""Settings: the guidance (`GuidanceConfig`), the sampling defaults, and a model family's `Preset`.

Every setting is validated here, once: out-of-range, non-finite or inconsistent values raise a
`ConfigError` that names the field. A preset is chosen once, when a pipeline is wrapped: the
`preset.json` beside a model's weights (the embedded models ship one), else the defaults of the
pipeline's family. Change a setting with `config.updated(eta=...)` (validated).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ConfigError, format_validation_error, validation_problems

Policy = Literal["error", "drop", "keep"]
Combination = Literal["sum", "pcgrad", "priority"]
CfgForward = Literal["split", "joint", "concurrent"]
PromptStyle = Literal["as_written", "objects"]
PRESET_FILE = "preset.json"


class _Settings(BaseModel):
    """Strict, finite settings whose validation errors are `ConfigError`s naming the field."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)
    what: ClassVar[str] = "settings"

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as error:
            raise ConfigError(format_validation_error(error, self.what), validation_problems(error)) from None

    def updated(self, **changes: Any):
        """A validated copy with `changes` applied."""
        return type(self)(**(self.model_dump() | changes))


class GuidanceConfig(_Settings):
    """Strength, loss weights and schedule of the guidance.

    The defaults are the authors' sweep for SD 1.4/2.1 (alpha 1.5, margin 0.25, lambda_s 0.5,
    lambda_p 1, lambda_b 1, gradient weight 1000 on every step); a model family's preset may
    change them (docs/guidance.md lists each family's).
    """

    what: ClassVar[str] = "guidance settings"

    eta: float = Field(1000.0, ge=0, le=1e6, description="Gradient weight in noise_pred += eta * grad.")
    alpha: float = Field(1.5, gt=0, le=1e3)
    margin: float = Field(0.25, ge=0, le=1)
    near_margin: float = Field(0.25, gt=0, le=1.5)
    lambda_spatial: float = Field(0.5, ge=0, le=1e3)
    lambda_presence: float = Field(1.0, ge=0, le=1e3)
    lambda_balance: float = Field(1.0, ge=0, le=1e3)
    start: float = Field(0.0, ge=0, le=1, description="First guided step, as a fraction of the schedule.")
    end: float = Field(1.0, ge=0, le=1, description="Guidance stops at this fraction of the schedule.")
    policy: Policy = Field("keep", description="Conflict policy: error, drop or keep.")
    include_attributes: bool = Field(False, description="Use the whole name's tokens, not only the head noun's.")
    normalize_gradient: bool = Field(False, description="Scale each image's gradient to unit RMS before eta.")
    redundant_weight: float = Field(0.5, ge=0, le=1, description="Weight factor of relations implied by others.")
    skip_satisfied: bool = Field(
        False, description="No update for an image whose relations all hold with margin at this step's maps."
    )
    measure_first: bool = Field(
        True,
        description="With skip_satisfied, once at least half the batch was settled at the previous step: "
        "measure every image without grad first, then run the backward only for the unsettled ones "
        "(the same images, less work).",
    )
    split_support: float | None = Field(
        0.25,
        ge=0,
        le=1,
        description="A map whose value at its own centroid is below this share of its maximum is split (the "
        "centroid lies between two blobs): relations involving it are reported uncertain, not satisfied "
        "(None: not checked).",
    )
    split_variance: float | None = Field(
        None,
        gt=0,
        le=1,
        description="A map whose spatial variance exceeds this is split too; a model family sets it from the "
        "largest object it draws (None: no such bound).",
    )
    split_resemblance: float | None = Field(
        None,
        gt=0,
        le=1,
        description="A map counts as split too when a place outside its main region looks like the object "
        "(cosine similarity of the decoder's features there, relative to the best match) at least this much: "
        "a second copy that the map does not follow. A model family sets it from labelled examples (None: "
        "not checked, and the features are not kept).",
    )
    split_colour: float | None = Field(
        None,
        gt=0,
        le=1,
        description="After sampling, an object counts as drawn twice when a place of the decoded image outside "
        "its main region has its colour (the image under its map at the last guided step) at least this much "
        "(`losses.colour_copies`): its relations are reported uncertain. Needs decoded images (not "
        "output_type='latent'). A model family sets it from labelled examples (None: not checked).",
    )
    combination: Combination = Field(
        "sum", description="How relations' gradients combine: sum, pcgrad or priority (infsplign_scene.conflicts)."
    )
    guidance_precision: Literal["model", "bfloat16"] = Field(
        "model", description="Run the guided forward/backward in the model's dtype or under bfloat16 autocast."
    )
    cfg_forward: CfgForward = Field(
        "concurrent",
        description="How a guided step runs classifier-free guidance's two halves: 'split' (the unconditional "
        "forward without grad, then the conditional one with grad), 'concurrent' (the split step with its two "
        "forwards in two threads; on a CPU with two or more threads, else the split step) or 'joint' (one "
        "batch with grad, the unconditional half as a constant). The same numbers each way; which is fastest "
        "depends on the machine (docs/performance.md).",
    )
    cuda_graph: bool = Field(
        False,
        description="On a CUDA device, record the guided step once as a CUDA graph and replay it at every "
        "guided step (infsplign_scene.cuda_graphs). The same numbers, up to the order of additions.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> GuidanceConfig:
        if self.start > self.end:
            raise ValueError(f"start ({self.start}) is after end ({self.end})")
        if self.cuda_graph and self.skip_satisfied and self.measure_first:
            raise ValueError(
                "cuda_graph replays one recorded step, but measure_first changes the step once images settle: "
                "set measure_first=False (or skip_satisfied=False)"
            )
        return self

    def guided(self, step: int, num_steps: int) -> bool:
        return self.eta > 0 and self.start * num_steps <= step < self.end * num_steps


class SamplingDefaults(_Settings):
    """Steps, CFG scale, DDIM eta and prompt style that a model family samples with by default.

    `ddim_eta` is diffusers' `eta` of the DDIM step (0: deterministic; 1: fresh noise at each step),
    not the guidance weight. `prompt_style` "objects" encodes a prompt that names the objects only
    (for models trained on such captions); the relations are guided either way."""

    what: ClassVar[str] = "sampling settings"

    num_inference_steps: int = Field(50, ge=1, le=1000)
    guidance_scale: float = Field(7.5, ge=0, le=100)
    ddim_eta: float = Field(0.0, ge=0, le=1)
    guidance_rescale: float = Field(0.0, ge=0, le=1, description="diffusers' rescale of the CFG prediction.")
    prompt_style: PromptStyle = "as_written"
    cpu_threads: int | None = Field(
        None,
        ge=1,
        le=1024,
        description="torch threads while sampling on a CPU (restored after); None keeps torch's setting. "
        "Small models whose passes are short keep their speed on a busy machine with one thread "
        "(docs/performance.md).",
    )


class Preset(_Settings):
    """A model family's guidance settings and sampling defaults."""

    what: ClassVar[str] = "preset"

    family: str = Field(min_length=1, max_length=64)
    about: str = ""
    nouns: list[str] = Field(default_factory=list, description="The objects a small model knows, for its errors.")
    guidance: GuidanceConfig = Field(default_factory=GuidanceConfig)
    sampling: SamplingDefaults = Field(default_factory=SamplingDefaults)

    @classmethod
    def load(cls, path: str | Path) -> Preset:
        """Read a preset JSON file (`preset.json` beside a model's weights)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
            raise ConfigError(f"cannot read the preset {path}: {error}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"the preset {path} must hold a JSON object")
        return cls(**data)

    @classmethod
    def for_pipeline(cls, pipe: Any) -> Preset:
        """The `preset.json` of the folder the pipeline was loaded from, else its family's defaults:
        the authors' sweeps (SD 1.x/2.x: alpha 1.5, margin 0.25, CFG 7.5; SDXL: margin 0.5, CFG 5)."""
        from .families import SDXL, family_of

        folder = getattr(pipe, "name_or_path", None)
        if folder and (Path(folder) / PRESET_FILE).is_file():
            return cls.load(Path(folder) / PRESET_FILE)
        family = family_of(pipe)
        if family == SDXL:
            return cls(family=family, guidance={"margin": 0.5}, sampling={"guidance_scale": 5.0})
        return cls(family=family)
