"""Sweep of the guidance settings for the embedded shapes model (suite a, small N).

    python benchmarks/tune_shapes.py [--images 50] [--json PATH]

Each setting is scored on the same seeded items of suite (a) (two objects, five predicates), on a
seed range disjoint from the benchmark's (seed 1 here, 0 in `infsplign-scene bench shapes`), with
the benchmark's default prompts (objects named, relations in the graph only). The
chosen default maximises relation accuracy among settings that keep object accuracy (every named
object drawn with its colour and shape) within 3 points of unguided sampling;
`SHAPES_GUIDANCE` in infsplign_scene/shapes/model.py records it.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

from infsplign_scene.guidance import GuidanceConfig, ScenePipeline
from infsplign_scene.shapes.bench import generate, make_suite, score
from infsplign_scene.shapes.model import SHAPES_SAMPLING

GRID = {
    "eta": [15.0, 30.0, 60.0, 120.0],
    "end": [0.6, 1.0],
    "lambda_presence": [0.1, 1.0],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    scene_pipe = ScenePipeline.from_pretrained(None)
    base = GuidanceConfig.for_pipeline(scene_pipe.pipe)
    items = make_suite("a_two_objects", args.images, args.seed)
    images, graphs, _ = generate(scene_pipe, items, base.model_copy(update={"eta": 0.0}), 50, **SHAPES_SAMPLING)
    unguided, _ = score(items, images, graphs)
    rows = [{"setting": "unguided", **unguided}]
    print("unguided", json.dumps({k: round(v, 3) for k, v in unguided.items()}))
    for values in itertools.product(*GRID.values()):
        setting = dict(zip(GRID, values, strict=True))
        config = base.model_copy(update=setting)
        images, graphs, seconds = generate(scene_pipe, items, config, 50, **SHAPES_SAMPLING)
        metrics, _ = score(items, images, graphs)
        rows.append({"setting": setting, **metrics, "seconds_per_image": seconds / len(items)})
        print(setting, json.dumps({k: round(v, 3) for k, v in metrics.items()}))
    eligible = [r for r in rows[1:] if r["object_accuracy"] >= unguided["object_accuracy"] - 0.03] or rows[1:]
    best = max(eligible, key=lambda r: (r["relation_accuracy"], r["relation_accuracy_uncond"]))
    print("chosen:", best["setting"])
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "chosen": best["setting"]}, indent=2))


if __name__ == "__main__":
    main()
