"""How well the split-map rule (`losses.split_maps`) tells objects drawn twice from objects drawn once.

    python benchmarks/split_maps.py [--images 60] [--seed 7] [--json docs/results/split_maps.json]

Guided images of the shapes model's suites (a)-(c) of `bench shapes`; for every object, the
label comes from the image (how many components of its colour the exact detector finds, of at
least half the area of the smallest object the model was trained on) and the features from the
last guided step's map on the finest level (value at the centroid over the maximum, variance).
Prints how many objects drawn twice, and drawn once, each rule flags.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import ndimage

from infsplign_scene import ScenePipeline
from infsplign_scene.lab.shapes.bench import make_suite
from infsplign_scene.lab.shapes.detector import COLOR_TOLERANCE
from infsplign_scene.lab.shapes.scenes import COLORS, RADIUS_RANGE
from infsplign_scene.losses import centroid_support, centroids_and_variances

# half the area of the smallest object drawn in training (a triangle of the smallest radius: 1.8 r^2)
MIN_INSTANCE_AREA = 0.5 * 1.8 * RADIUS_RANGE[0] ** 2
SUITES = ("a_two_objects", "b_three_objects", "c_four_objects")
RULES = {
    "support < 0.25": lambda support, variance: support < 0.25,
    "variance > 0.02": lambda support, variance: variance > 0.02,
    "support < 0.25 or variance > 0.02 (the shapes preset)": lambda s, v: (s < 0.25) | (v > 0.02),
    "support < 0.5 or variance > 0.01": lambda s, v: (s < 0.5) | (v > 0.01),
}


def instances(image: np.ndarray, color: str) -> int:
    palette = np.array(list(COLORS.values()), dtype=np.float32)
    distances = np.linalg.norm(image.astype(np.float32)[:, :, None, :] - palette[None, None], axis=-1)
    labels, count = ndimage.label(
        (distances.argmin(-1) == list(COLORS).index(color)) & (distances.min(-1) <= COLOR_TOLERANCE)
    )
    areas = ndimage.sum_labels(np.ones_like(labels), labels, index=np.arange(1, count + 1)) if count else []
    return int(sum(area >= MIN_INSTANCE_AREA for area in areas))


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
                    drawn = instances(np.asarray(result.images[b]), colors[object_id])
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
