"""Conflict studies: scene graphs x seeds x resolution policies, made by `generate` and judged by
`score` (one path for every benchmark).

    infsplign-scene study SPEC.json --out DIR

SPEC.json::

    {"seeds": [0, 1, 2], "policies": ["drop", "keep", "pcgrad", "priority", "error"],
     "model": null, "config": {"eta": 30}, "sampling": {"num_inference_steps": 25},
     "graphs": [{"id": "cycle3", "kind": "conflict", "text": "..."},
                {"id": "pair", "kind": "consistent", "graph": {...scene graph JSON...}}]}

Policies are `generate` arms: ``drop`` and ``keep`` are the analysis policies (with the plain
weighted sum); ``pcgrad`` and ``priority`` keep every relation and combine their gradients
conflict-aware (`infsplign_scene.conflicts`); ``error`` refuses contradicting graphs (recorded as
refused). Image k of a graph is sampled from seeds[k] under every policy.

The graphs are written to DIR/set.jsonl; `generate` makes DIR/images and DIR/manifest.jsonl
(resumable: a re-run makes only what is missing), `score` locates the objects (the exact detector
of the embedded model, or any `Detector`) and writes DIR/scores.jsonl and the summaries, with the
table by kind and policy (the share of the largest consistent subset satisfied, with 95%
intervals) and the differences between policies on the same images.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, model_validator

from ..config import GuidanceConfig, SamplingDefaults
from ..errors import InfsplignError, format_validation_error, quoted
from ..guidance import ScenePipeline
from .detectors import Detector, exact_detector
from .generate import generate
from .score import refused_counts, score_run, summarise
from .summaries import write_summary

MAX_STUDY_IMAGES = 100_000


class GraphEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64)
    kind: str = Field("graph", min_length=1, max_length=64)
    text: str | None = Field(None, max_length=4000)
    graph: dict | None = None

    @model_validator(mode="after")
    def _one_source(self) -> GraphEntry:
        if (self.text is None) == (self.graph is None):
            raise ValueError(f"graph {self.id!r} needs exactly one of 'text' and 'graph'")
        return self


class StudySpec(BaseModel):
    """A study: graphs x seeds x policies, each row one image (see the module's docstring)."""

    model_config = ConfigDict(extra="forbid")

    graphs: list[GraphEntry] = Field(min_length=1)
    seeds: list[StrictInt] = Field(default_factory=lambda: [0], min_length=1, max_length=64)
    policies: list[Literal["drop", "keep", "pcgrad", "priority", "error"]] = Field(
        default_factory=lambda: ["drop", "keep"], min_length=1
    )
    model: str | None = None
    config: dict = Field(default_factory=dict)
    sampling: dict = Field(default_factory=dict)
    batch_size: int = Field(8, ge=1, le=64)

    @model_validator(mode="after")
    def _bounded_and_distinct(self) -> StudySpec:
        images = len(self.graphs) * len(self.seeds) * len(self.policies)
        if images > MAX_STUDY_IMAGES:
            raise ValueError(f"{images} images (graphs x seeds x policies) is more than {MAX_STUDY_IMAGES} per study")
        for name, values in (
            ("graph id", [g.id for g in self.graphs]),
            ("seed", self.seeds),
            ("policy", self.policies),
        ):
            repeated = sorted(str(value) for value, count in Counter(values).items() if count > 1)
            if repeated:
                raise ValueError(f"each {name} may appear once; repeated: {', '.join(repeated)}")
        GuidanceConfig(**self.config)  # the same checks as at sampling time, before any image is made
        SamplingDefaults().updated(**self.sampling)
        return self


def load_spec(path: Path) -> StudySpec:
    """Read and check a study specification; every problem is an `InfsplignError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise InfsplignError(f"no such study specification: {quoted(str(path))}")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as error:
        raise InfsplignError(f"the study specification {quoted(str(path))} is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise InfsplignError(f"a study specification is a JSON object, got a JSON {type(data).__name__}")
    try:
        return StudySpec.model_validate(data)
    except ValidationError as error:
        raise InfsplignError(format_validation_error(error, "study specification")) from None


def run_study(
    spec_path: Path,
    out: Path,
    scene_pipe: ScenePipeline | None = None,
    detector: Detector | None = None,
    progress: bool = True,
) -> dict:
    """Make every missing image (`generate`), score every unscored one (`score`), summarise; return
    the summary. Every output stays under `out` (file names come from the graph ids safely)."""
    spec = load_spec(spec_path)
    out.mkdir(parents=True, exist_ok=True)
    scene_pipe = scene_pipe or ScenePipeline.from_pretrained(spec.model)
    set_path = out / "set.jsonl"
    rows = [
        {"id": entry.id, "kind": entry.kind}
        | ({"graph": entry.graph} if entry.graph is not None else {"prompt": entry.text})
        for entry in spec.graphs
    ]
    set_path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    generate(
        set_path,
        out,
        scene_pipe,
        seeds=list(spec.seeds),
        arms=tuple(spec.policies),
        batch_size=spec.batch_size,
        config=scene_pipe.config.updated(**spec.config),
        sampling=spec.sampling,
        progress=progress,
    )
    scored = score_run(out, detector or exact_detector(scene_pipe.preset.family), progress=progress)
    summary = summarise(scored, refused_counts(out))
    write_summary(summary, out)
    return summary
