"""How well the split-map rule (`losses.split_maps`) tells objects drawn twice from objects drawn once.

    python benchmarks/split_maps.py [--images 60] [--seed 7] [--json docs/results/split_maps.json]

Guided images of the shapes model's suites (a)-(c) of `bench shapes`; for every object, the
label comes from the image (how many instances of its colour the exact detector finds,
`DetectionResult.instances`) and the features from the
last guided step's map on the finest level (value at the centroid over the maximum, variance).
Prints how many objects drawn twice, and drawn once, each rule flags.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from infsplign_scene import ScenePipeline
from infsplign_scene.lab.shapes.bench import make_suite
from infsplign_scene.lab.shapes.detector import detect
from infsplign_scene.losses import centroid_support, centroids_and_variances

SUITES = ("a_two_objects", "b_three_objects", "c_four_objects")
RULES = {
    "support < 0.25": lambda support, variance: support < 0.25,
    "variance > 0.02": lambda support, variance: variance > 0.02,
    "support < 0.25 or variance > 0.02 (the shapes preset)": lambda s, v: (s < 0.25) | (v > 0.02),
    "support < 0.5 or variance > 0.01": lambda s, v: (s < 0.5) | (v > 0.01),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    scene_pipe = ScenePipeline.from_pretrained("shapes")
    objects = []  # (instances, support, variance)
    for suite in SUITES:
        items = make_suite(suite, args.images, args.seed)
        for start in range(0, len(items), 30):
            chunk = items[start : start + 30]
            result = scene_pipe(
                [item.graph for item in chunk],
                seed=[item.seed for item in chunk],
                record_maps=True,
                progress=False,
                prompt_style="as_written",
            )
            levels = result.maps[max(result.maps)]
            maps = levels[max(levels)].float()
            centroids, variances = centroids_and_variances(maps)
            support = centroid_support(maps, centroids)
            for b, item in enumerate(chunk):
                colors = {o.id: o.attributes[0] for o in item.graph.objects}
                for k, object_id in enumerate(result.objective.object_ids[b]):
                    drawn = detect(np.asarray(result.images[b])).instances.get(colors[object_id], 0)
                    objects.append((drawn, float(support[b, k]), float(variances[b, k])))
    twice = [o for o in objects if o[0] >= 2]
    once = [o for o in objects if o[0] == 1]
    rows = {}
    for name, rule in RULES.items():
        rows[name] = {
            "drawn twice, flagged": int(sum(rule(s, v) for _, s, v in twice)),
            "drawn twice": len(twice),
            "drawn once, flagged": int(sum(rule(s, v) for _, s, v in once)),
            "drawn once": len(once),
        }
        print(f"{name}: {rows[name]}")
    if args.json:
        args.json.write_text(json.dumps({"images_per_suite": args.images, "seed": args.seed, "rules": rows}, indent=2))


if __name__ == "__main__":
    main()
