"""Baseline-vs-guided benchmark on the embedded shapes model, scored by the exact detector.

Suites (fixed and seeded): (a) two objects x {left_of, right_of, above, below, near}; (b) three
objects, two relations; (c) four objects, three relations; (d) contradicting graphs (a cycle on
one axis) under the `drop` and `keep` policies (`error` refuses them all). Unguided and guided
images use the same seeds, so each relation can be compared pair by pair (paired flips).

`run_benchmark` makes each suite with `generate` and judges it with `score`, as every benchmark
run is made. `generate` and `score` below are the in-memory versions that the preset sweeps of
`benchmarks/` run many times over (no files written); they judge with the same `holds`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from ...config import GuidanceConfig
from ...errors import InfsplignError
from ...guidance import ScenePipeline
from ...relations import holds
from ...scene import SceneGraph
from ..detectors import ShapesDetector
from ..generate import generate as generate_run
from ..generate import manifest_rows
from ..score import (
    consistent_share,
    duplicates,
    paired_duplicates,
    paired_flips,
    refused_counts,
    report_against_detector,
    score_run,
    summarise,
)
from ..summaries import write_summary
from .detector import DetectionResult, detect
from .scenes import COLORS, SHAPES

SUITES = ("a_two_objects", "b_three_objects", "c_four_objects", "d_conflict_drop", "d_conflict_keep")
DIRECTIONAL = ("left_of", "right_of", "above", "below")
ARTIFACT_PIXELS = 5  # an image with at least this many stray pixels "has artifacts"
PROMPT_STYLES = ("objects", "relations")


@dataclass
class Item:
    graph: SceneGraph
    seed: int
    objects: list[tuple[str, str]]  # (colour, shape) per object id, in graph order


def _objects(rng: np.random.Generator, count: int) -> list[tuple[str, str]]:
    colors = rng.choice(list(COLORS), size=count, replace=False)
    return [(str(c), str(rng.choice(SHAPES))) for c in colors]


def _graph(
    objects: list[tuple[str, str]], relations: list[tuple[int, str, int]], weights=None, prompt: str = "objects"
) -> SceneGraph:
    """The item's scene graph. prompt "objects" names the objects only, in the training captions'
    form ("a red circle and a blue square"); "relations" writes the relations into the prompt
    ("a red circle to the left of a blue square"), words this model never saw in training."""
    ids = [f"{color}_{shape}" for color, shape in objects]
    graph = SceneGraph(  # with no prompt given, SceneGraph writes the relations into one
        objects=[
            {"id": ids[k], "name": " ".join(obj), "noun": obj[1], "attributes": [obj[0]]}
            for k, obj in enumerate(objects)
        ],
        relations=[
            {"subject": ids[s], "predicate": p, "object": ids[o], "weight": (weights[n] if weights else 1.0)}
            for n, (s, p, o) in enumerate(relations)
        ],
    )
    return graph.naming_objects_only() if prompt == "objects" else graph


def check_prompt_style(prompt: str) -> None:
    if prompt not in PROMPT_STYLES:
        raise InfsplignError(f"unknown prompt style {prompt!r}; choose from {', '.join(PROMPT_STYLES)}")


def make_suite(name: str, images: int, seed: int, prompt: str = "objects") -> list[Item]:
    """The fixed, seeded items of a suite."""
    check_prompt_style(prompt)
    rng = np.random.default_rng([seed, SUITES.index(name)])
    items = []
    for i in range(images):
        if name == "a_two_objects":
            objects = _objects(rng, 2)
            relations = [(0, ("left_of", "right_of", "above", "below", "near")[i % 5], 1)]
            weights = None
        elif name in ("b_three_objects", "c_four_objects"):
            count = 3 if name == "b_three_objects" else 4
            objects = _objects(rng, count)
            # relations consistent with a random layout order, over a random spanning tree
            x_rank, y_rank = rng.permutation(count), rng.permutation(count)
            relations = []
            for child in range(1, count):
                parent = int(rng.integers(0, child))
                axis = rng.integers(0, 2)
                if axis == 0:
                    predicate = "left_of" if x_rank[child] < x_rank[parent] else "right_of"
                else:
                    predicate = "above" if y_rank[child] < y_rank[parent] else "below"
                relations.append((child, predicate, parent))
            weights = None
        else:  # a 3-cycle on one axis; one relation lighter, so `drop` has a unique choice
            objects = _objects(rng, 3)
            predicate = ("left_of", "above")[i % 2]
            relations = [(0, predicate, 1), (1, predicate, 2), (2, predicate, 0)]
            weights = [1.0, 1.0, 1.0]
            weights[int(rng.integers(0, 3))] = 0.5
        item_seed = seed * 1_000_000 + SUITES.index(name) * 10_000 + i
        items.append(Item(_graph(objects, relations, weights, prompt), item_seed, objects))
    return items


def generate(
    scene_pipe: ScenePipeline,
    items: list[Item],
    config: GuidanceConfig,
    batch_size: int,
    desc: str = "",
    traces: list | None = None,
    **sampling,
):
    """Images for the items, in batches; returns (images, resolved graphs, seconds).

    Each batch's step records (`ComposeResult.trace`) are appended to `traces` when it is given."""
    images, graphs = [], []
    started = time.perf_counter()
    batches = range(0, len(items), batch_size)
    for start in tqdm(batches, desc=desc or "images", unit="batch", disable=not desc):
        chunk = items[start : start + batch_size]
        result = scene_pipe(
            [item.graph for item in chunk],
            seed=[item.seed for item in chunk],
            config=config,
            progress=False,
            **sampling,
        )
        images += result.images
        graphs += result.graphs
        if traces is not None:
            traces.append(result.trace)
    return images, graphs, time.perf_counter() - started


def score(items: list[Item], images: list, graphs: list[SceneGraph]) -> tuple[dict, list[list[bool | None]]]:
    """Metrics of one suite in one mode, and each relation's outcome (None when an object is missing).

    An object is *found* when the detector sees its colour with the named shape (colours are
    distinct within an image, so the colour identifies it). Relations are judged between found
    objects (VISOR_cond style); the `_color` variants locate objects by colour alone, which shows
    placement even where a shape came out wrong."""
    detections: list[DetectionResult] = [detect(np.asarray(image)) for image in images]
    objects_ok = colors_ok = all_ok = all_ok_color = shapes_right = shapes_seen = artifacts = 0
    outcomes: list[list[bool | None]] = []
    strict_outcomes: list[bool | None] = []
    color_outcomes: list[bool | None] = []
    for item, graph, detection in zip(items, graphs, detections, strict=True):
        wanted = {o.id: (o.attributes[0], o.noun) for o in item.graph.objects}
        located = {object_id: detection.find(color) for object_id, (color, _) in wanted.items()}
        found = {object_id: detection.find(color, shape) for object_id, (color, shape) in wanted.items()}
        shapes_seen += sum(d is not None for d in located.values())
        shapes_right += sum(d is not None for d in found.values())
        every_color = all(d is not None for d in located.values())
        every = all(d is not None for d in found.values())
        objects_ok += every
        colors_ok += every_color
        artifacts += detection.artifact_pixels >= ARTIFACT_PIXELS
        relations = item.graph.relations
        image_outcomes = _judge(relations, found)
        image_color_outcomes = _judge(relations, located)
        outcomes.append(image_outcomes)
        strict_outcomes += _judge(relations, found, strict=True)
        color_outcomes += image_color_outcomes
        resolved = {str(r) for r in graph.relations}
        kept = [str(r) in resolved for r in relations]
        all_ok += every and all(o for o, k in zip(image_outcomes, kept, strict=True) if k)
        all_ok_color += every_color and all(o for o, k in zip(image_color_outcomes, kept, strict=True) if k)
    judged = [o for image in outcomes for o in image if o is not None]
    total_relations = sum(len(image) for image in outcomes)
    judged_color = [o for o in color_outcomes if o is not None]
    n = max(len(items), 1)
    metrics = {
        "images": len(items),
        "object_accuracy": objects_ok / n,
        "color_accuracy": colors_ok / n,
        "shape_accuracy": shapes_right / max(shapes_seen, 1),
        "relation_accuracy": sum(judged) / max(len(judged), 1),
        "relation_accuracy_strict": sum(o for o in strict_outcomes if o) / max(len(judged), 1),
        "relation_accuracy_uncond": sum(judged) / max(total_relations, 1),
        "relation_accuracy_color": sum(judged_color) / max(len(judged_color), 1),
        "all_satisfied": all_ok / n,
        "all_satisfied_color": all_ok_color / n,
        "artifact_rate": artifacts / n,
        "duplicate_rate": sum(
            any(duplicated(item, detection).values()) for item, detection in zip(items, detections, strict=True)
        )
        / n,
    }
    return metrics, outcomes


def duplicated(item: Item, detection: DetectionResult) -> dict[str, bool]:
    """Per object id of the item: whether the detector finds its colour drawn more than once."""
    return {o.id: detection.instances.get(o.attributes[0], 0) > 1 for o in item.graph.objects}


def _judge(relations, objects: dict, strict: bool = False) -> list[bool | None]:
    """Each relation's outcome between the given detections (None when either object is missing)."""
    outcomes = []
    for relation in relations:
        subject, obj = objects[relation.subject], objects[relation.object]
        missing = subject is None or obj is None
        outcomes.append(None if missing else holds(subject.box, obj.box, relation.predicate, strict=strict))
    return outcomes


def grid(rows: list[list], scale: int = 4) -> Image.Image:
    """Rows of equally sized images pasted into one picture, upscaled without smoothing."""
    width, height = rows[0][0].size
    columns = max(len(row) for row in rows)
    canvas = Image.new("RGB", (columns * width, len(rows) * height), "white")
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            canvas.paste(image, (c * width, r * height))
    return canvas.resize((canvas.width * scale, canvas.height * scale), Image.NEAREST)


def run_benchmark(
    out: Path,
    images: int = 200,
    seed: int = 0,
    suites: tuple[str, ...] = SUITES,
    scene_pipe: ScenePipeline | None = None,
    config: GuidanceConfig | None = None,
    batch_size: int = 50,
    grid_path: Path | None = None,
    grid_columns: int = 10,
    prompt: str = "objects",
    progress: bool = True,
) -> dict:
    """Run the suites unguided and guided on the same seeds with `generate`, judge them with
    `score` (the shapes detector), one run folder per suite under `out` (a re-run resumes); return
    the JSON-ready results.

    prompt: "objects" (the relations come from the graph only) or "relations" (also written into
    the prompt, in words the model never saw in training); see `_graph`."""
    scene_pipe = scene_pipe or ScenePipeline.from_pretrained("shapes")
    config = config or scene_pipe.config
    sampling = {"prompt_style": "as_written"}  # the suites write their prompts
    results: dict = {
        "config": config.model_dump(),
        "sampling": scene_pipe.preset.sampling.updated(**sampling).model_dump(),
        "images_per_suite": images,
        "prompt": prompt,
    }
    grid_rows = []
    for suite in suites:
        folder = out / suite
        folder.mkdir(parents=True, exist_ok=True)
        rows = [
            {"id": f"{i:04d}", "kind": suite, "graph": item.graph.model_dump(mode="json", exclude_none=True)}
            for i, item in enumerate(make_suite(suite, images, seed, prompt))
        ]
        (folder / "set.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
        policy = "drop" if suite == "d_conflict_drop" else config.policy
        generate_run(
            folder / "set.jsonl",
            folder,
            scene_pipe,
            seed=seed,
            batch_size=batch_size,
            config=config.updated(policy=policy),
            sampling=sampling,
            progress=progress,
        )
        scored = score_run(folder, ShapesDetector(), progress=False)
        write_summary(summarise(scored, refused_counts(folder)), folder)
        results[suite] = suite_results(scored, conflict=suite.startswith("d_conflict"))
        made = {(r["id"], r["arm"]): r["image"] for r in manifest_rows(folder) if r["refused"] is None}
        for arm in ("unguided", "guided"):
            grid_rows.append([Image.open(folder / made[(row["id"], arm)]) for row in rows[:grid_columns]])
    if grid_path is not None:
        grid(grid_rows).save(grid_path)
    return results


def _judged(row: dict) -> list[tuple[bool | None, str]]:
    return list(zip(row["outcomes"], row["relations"], strict=True))


def suite_results(rows: list[dict], conflict: bool = False) -> dict:
    """Per arm, from `score`'s rows: `object_accuracy` (every object found), `relation_accuracy`
    (among relations whose objects were found, as VISOR_cond) and `_uncond` (among all),
    `all_satisfied` (every object found and every guided relation holding: the ones the policy
    kept), the duplicates, the report's verdicts against the detector's, seconds per image and,
    on conflicts, the share of the largest consistent subset satisfied; then the paired flips and
    duplicates between the arms."""
    entry: dict = {}
    for arm in ("unguided", "guided"):
        mine = [r for r in rows if r["arm"] == arm]
        outcomes = [o for r in mine for o in r["outcomes"]]
        judged = [o for o in outcomes if o is not None]
        kept = [
            r["all_found"] and all(o is True for o, name in _judged(r) if name in r["guided_relations"]) for r in mine
        ]
        duplicated = duplicates(mine)
        metrics = {
            "images": len(mine),
            "object_accuracy": float(np.mean([r["all_found"] for r in mine])),
            "relation_accuracy": sum(judged) / max(len(judged), 1),
            "relation_accuracy_uncond": sum(judged) / max(len(outcomes), 1),
            "all_satisfied": float(np.mean(kept)),
            "duplicate_rate": duplicated["duplicate_rate"],
            "seconds_per_image": float(np.mean([r["seconds"] for r in mine])),
        }
        if arm == "guided":
            metrics |= {key: duplicated[key] for key in duplicated if key.endswith("on_duplicates")}
            metrics["report_against_detector"] = report_against_detector(mine)
        if conflict:
            metrics["max_consistent_satisfied"] = float(np.mean([consistent_share(r) for r in mine]))
        entry[arm] = metrics
    entry["paired_flips"] = paired_flips(rows)
    entry["paired_duplicates"] = paired_duplicates(rows)
    return entry
