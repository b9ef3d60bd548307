"""Cheaper guidance schedules on the embedded shapes model: time saved against accuracy kept.

    python benchmarks/cheaper_schedules.py [--images 100] [--json PATH]

Suite (a) items (seed 2, disjoint from the benchmark's), sampled with the model family's default
guidance (every step; settled images get no update, and the backward is skipped while every image
of the batch was settled at the previous step) and with: guidance on the first 60% and the first
30% of the steps, settled images pushed too (`skip_satisfied` off: a backward at every step), and
the guided pass in bfloat16.
Times are seconds per image measured in this one run (batches of 50, 2 CPU threads).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from infsplign_scene.guidance import GuidanceConfig, ScenePipeline
from infsplign_scene.shapes.bench import generate, make_suite, score
from infsplign_scene.shapes.model import SHAPES_SAMPLING

VARIANTS = {
    "unguided": {"eta": 0.0},
    "default (whole schedule)": {},
    "first 60%": {"start": 0.0, "end": 0.6},
    "first 30%": {"start": 0.0, "end": 0.3},
    "settled images pushed too": {"skip_satisfied": False},
    "bfloat16 guided pass": {"guidance_precision": "bfloat16"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    scene_pipe = ScenePipeline.from_pretrained(None)
    base = GuidanceConfig.for_pipeline(scene_pipe.pipe)
    items = make_suite("a_two_objects", args.images, 2)
    # warm-up at the measured batch size in both modes: oneDNN sets kernels up once per tensor shape
    for warm in (base, base.model_copy(update={"eta": 0.0})):
        generate(scene_pipe, items[:50], warm, 50, **SHAPES_SAMPLING)
    rows = {}
    for name, update in VARIANTS.items():
        images, graphs, seconds = generate(scene_pipe, items, base.model_copy(update=update), 50, **SHAPES_SAMPLING)
        metrics, _ = score(items, images, graphs)
        rows[name] = {**metrics, "seconds_per_image": seconds / len(items)}
        print(
            f"{name:<22} relation {metrics['relation_accuracy']:.3f}  objects {metrics['object_accuracy']:.3f}  "
            f"{seconds / len(items):.3f} s/image"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
