"""Conflict studies: scene graphs x seeds x resolution policies, one result row per image.

    infsplign-scene study SPEC.json --out DIR

SPEC.json::

    {"seeds": [0, 1, 2], "policies": ["drop", "keep", "pcgrad", "error"],
     "model": null, "config": {"eta": 30}, "sampling": {"num_inference_steps": 25},
     "graphs": [{"id": "cycle3", "kind": "conflict", "text": "..."},
                {"id": "pair", "kind": "consistent", "graph": {...scene graph JSON...}}]}

Policies: ``drop`` and ``keep`` are the analysis policies (with the plain weighted sum);
``pcgrad`` and ``priority`` keep every relation and combine their gradients conflict-aware
(`infsplign_scene.conflicts`); ``error`` refuses contradicting graphs (recorded as refused).

Rows go to DIR/results.jsonl as they finish (a re-run skips finished rows, so an interrupted run
loses nothing written); DIR/summary.md, DIR/summary.csv and DIR/summary.png summarise them.
Objects are located by a detector: the exact shapes detector for the embedded model, or any
object with `locate(image, graph) -> {object_id: box (x0, y0, x1, y1) or None}`; relations are
judged by `relations.holds`.
"""

from __future__ import annotations

import csv
import json
import re
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, model_validator

from ..analysis import analyze
from ..config import GuidanceConfig, SamplingDefaults
from ..errors import ConflictError, InfsplignError, format_validation_error, quoted
from ..guidance import ScenePipeline
from ..parsing import load_scene
from ..relations import holds
from ..scene import SceneGraph
from .detectors import Detector, ShapesDetector

POLICY_SETTINGS = {
    "drop": {"policy": "drop", "combination": "sum"},
    "keep": {"policy": "keep", "combination": "sum"},
    "pcgrad": {"policy": "keep", "combination": "pcgrad"},
    "priority": {"policy": "keep", "combination": "priority"},
    "error": {"policy": "error", "combination": "sum"},
}


def safe_file_name(text: str) -> str:
    """A file name from free text: only letters, digits, '_', '-' and '.', never a path or a dot file."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:120].lstrip(".")
    return name or "_"


def max_consistent(graph: SceneGraph) -> int:
    """Size of the largest subset of relations without a contradiction (unit weights)."""
    unit = graph.model_copy(update={"relations": [r.model_copy(update={"weight": 1.0}) for r in graph.relations]})
    return len(graph.relations) - len(analyze(unit, policy="drop").dropped)


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
    seeds: list[StrictInt] = Field(default_factory=lambda: [0], min_length=1)
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


def read_rows(path: Path) -> list[dict]:
    """The rows written so far; a torn last line (a run stopped mid-write) is cut off, to be redone."""
    if not path.exists():
        return []
    rows, kept = [], 0
    data = path.read_bytes()
    for line in data.splitlines(keepends=True):
        try:
            rows.append(json.loads(line))
        except (json.JSONDecodeError, UnicodeDecodeError):
            break
        kept += len(line)
    if kept < len(data):
        with path.open("r+b") as handle:
            handle.truncate(kept)
    return rows


def run_study(
    spec_path: Path,
    out: Path,
    scene_pipe: ScenePipeline | None = None,
    detector: Detector | None = None,
    progress: bool = True,
) -> list[dict]:
    """Run every missing (graph, seed, policy) row, `batch_size` images at a time; return all rows.

    File names are made from the graph ids safely: every output stays under `out`."""
    spec = load_spec(spec_path)
    out.mkdir(parents=True, exist_ok=True)
    scene_pipe = scene_pipe or ScenePipeline.from_pretrained(spec.model)
    detector = detector or ShapesDetector()
    base = scene_pipe.config.updated(**spec.config)
    results_path = out / "results.jsonl"
    rows = read_rows(results_path)
    done = {(r["graph"], r["seed"], r["policy"]) for r in rows}
    with results_path.open("a") as sink:
        for entry in spec.graphs:
            graph = load_scene(entry.graph if entry.graph is not None else entry.text)
            best = max_consistent(graph)
            for policy in spec.policies:
                missing = [s for s in spec.seeds if (entry.id, s, policy) not in done]
                config = base.updated(**POLICY_SETTINGS[policy])
                for start in range(0, len(missing), spec.batch_size):
                    seeds = missing[start : start + spec.batch_size]
                    new = _sample_rows(
                        scene_pipe, detector, entry, graph, best, policy, config, seeds, spec, out, progress
                    )
                    for row in new:
                        sink.write(json.dumps(row) + "\n")
                        sink.flush()
                    rows += new
    write_summary(rows, out)
    return rows


def _sample_rows(scene_pipe, detector, entry, graph, best, policy, config, seeds, spec, out, progress) -> list[dict]:
    started = time.perf_counter()
    try:
        result = scene_pipe([graph] * len(seeds), seed=seeds, config=config, progress=progress, **spec.sampling)
    except ConflictError as error:
        return [_row(entry, s, policy, graph, best, refused=str(error)) for s in seeds]
    seconds = (time.perf_counter() - started) / len(seeds)
    rows = []
    for index, seed in enumerate(seeds):
        image_path = out / "images" / safe_file_name(f"{entry.id}_{policy}_{seed}.png")
        image_path.parent.mkdir(exist_ok=True)
        result.images[index].save(image_path)
        located = detector.locate(result.images[index], graph)
        image = str(image_path.relative_to(out))
        rows.append(_row(entry, seed, policy, graph, best, located=located, seconds=seconds, image=image))
    return rows


def _row(entry, seed, policy, graph, best, located=None, seconds=0.0, image=None, refused=None) -> dict:
    row = {
        "graph": entry.id,
        "kind": entry.kind,
        "seed": seed,
        "policy": policy,
        "relations": [str(r) for r in graph.relations],
        "max_consistent": best,
        "refused": refused,
    }
    if located is None:
        return row
    satisfied = []
    for relation in graph.relations:
        a, b = located.get(relation.subject), located.get(relation.object)
        satisfied.append(None if a is None or b is None else holds(a.box, b.box, relation.predicate))
    row.update(
        satisfied=satisfied,
        objects_found={k: v is not None for k, v in located.items()},
        object_accuracy=all(v is not None for v in located.values()),
        satisfied_count=sum(bool(s) for s in satisfied),
        seconds=seconds,
        image=image,
    )
    return row


def summarise(rows: list[dict]) -> list[dict]:
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        groups[(row["kind"], row["policy"])].append(row)
    table = []
    for (kind, policy), members in sorted(groups.items()):
        ran = [r for r in members if not r["refused"]]
        table.append(
            {
                "kind": kind,
                "policy": policy,
                "images": len(ran),
                "refused": len(members) - len(ran),
                "object_accuracy": float(np.mean([r["object_accuracy"] for r in ran])) if ran else None,
                "max_consistent_share": float(
                    np.mean([min(r["satisfied_count"] / r["max_consistent"], 1.0) for r in ran])
                )
                if ran
                else None,
                "all_satisfied": float(np.mean([r["satisfied_count"] == len(r["relations"]) for r in ran]))
                if ran
                else None,
                "seconds_per_image": float(np.mean([r["seconds"] for r in ran])) if ran else None,
            }
        )
    return table


def write_summary(rows: list[dict], out: Path) -> None:
    table = summarise(rows)
    if not table:
        return
    columns = list(table[0])
    with (out / "summary.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(table)

    def cell(value) -> str:
        return "-" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row[c]) for c in columns) + " |" for row in table]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    _plot_summary(table, out / "summary.png")


def _plot_summary(table: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = sorted({row["kind"] for row in table})
    policies = sorted({row["policy"] for row in table})
    figure, axis = plt.subplots(figsize=(max(6, 1.5 * len(kinds) * len(policies) / 2), 4))
    width = 0.8 / max(len(policies), 1)
    for p, policy in enumerate(policies):
        values = [
            next((r["max_consistent_share"] or 0.0 for r in table if r["kind"] == kind and r["policy"] == policy), 0.0)
            for kind in kinds
        ]
        axis.bar(np.arange(len(kinds)) + p * width, values, width, label=policy)
    axis.set_xticks(np.arange(len(kinds)) + width * (len(policies) - 1) / 2, kinds)
    axis.set_ylabel("share of the largest consistent subset satisfied")
    axis.set_ylim(0, 1)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
