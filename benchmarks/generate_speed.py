"""`generate` against one `compose` call per image: images per second, and the share of the run
that is bookkeeping (PNG writing, manifest, hashing) rather than sampling.

    python benchmarks/generate_speed.py [--images 32] [--batch-size 8] [--json docs/results/generate_speed.json]

The shapes model, suite (b) of `bench shapes` (three objects, two relations), guided arm only,
the same prompts and seeds both ways, after a warm-up of each.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from infsplign_scene import ScenePipeline, compose
from infsplign_scene.lab.generate import generate, image_seed, manifest_rows
from infsplign_scene.lab.shapes.bench import make_suite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    scene_pipe = ScenePipeline.from_pretrained("shapes")
    items = make_suite("b_three_objects", args.images, 0)
    with tempfile.TemporaryDirectory() as folder:
        prompt_set = Path(folder) / "set.jsonl"
        prompt_set.write_text(
            "\n".join(json.dumps({"id": f"b{i}", "graph": it.graph.model_dump()}) for i, it in enumerate(items))
        )
        seeds = [image_seed(0, f"b{i}", 0) for i in range(len(items))]
        compose(items[0].graph, pipe=scene_pipe, seed=seeds[0], progress=False)  # warm-up
        started = time.perf_counter()
        for item, seed in zip(items, seeds, strict=True):
            compose(item.graph, pipe=scene_pipe, seed=seed, progress=False)
        per_image_compose = (time.perf_counter() - started) / len(items)
        warm = Path(folder) / "warm"
        generate(
            prompt_set,
            warm,
            scene_pipe,
            arms=("guided",),
            limit=args.batch_size,
            batch_size=args.batch_size,
            progress=False,
        )
        run = Path(folder) / "run"
        started = time.perf_counter()
        summary = generate(prompt_set, run, scene_pipe, arms=("guided",), batch_size=args.batch_size, progress=False)
        wall = time.perf_counter() - started
        sampling = sum(row["seconds"] for row in manifest_rows(run))
    results = {
        "images": len(items),
        "batch_size": args.batch_size,
        "compose_seconds_per_image": per_image_compose,
        "generate_seconds_per_image": wall / summary["written"],
        "generate_over_compose_images_per_second": per_image_compose / (wall / summary["written"]),
        "bookkeeping_share": 1 - sampling / wall,
    }
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
