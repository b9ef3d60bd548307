"""How well the split-map rule (`losses.split_maps`) tells objects drawn twice from objects drawn once.

    python benchmarks/split_maps.py [--images 200] [--seed 7] [--json docs/results/split_maps.json]

Guided images of the shapes model's suites (a)-(d) of `bench shapes` (its preset, its prompts);
for every object, the label comes from the image (how many instances of its colour the exact
detector finds, `DetectionResult.instances`) and the features from the last guided step's map on
the finest level: value at the centroid over the maximum (`support`), variance, and the peak of
the second-strongest connected region of the map above a share of its maximum, over the maximum
(`second_peak`). Prints how many objects drawn twice, and drawn once, each rule flags; `--json`
also keeps every object's features, so that other rules can be judged without sampling again.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from infsplign_scene import ScenePipeline
from infsplign_scene.lab.shapes.bench import make_suite
from infsplign_scene.lab.shapes.detector import detect
from infsplign_scene.losses import centroid_support, centroids_and_variances

SUITES = ("a_two_objects", "b_three_objects", "c_four_objects", "d_conflict_drop")
RULES = {
    "support < 0.25": lambda o: o["support"] < 0.25,
    "variance > 0.02": lambda o: o["variance"] > 0.02,
    "support < 0.25 or variance > 0.02 (the shapes preset)": lambda o: o["support"] < 0.25 or o["variance"] > 0.02,
    "support < 0.5 or variance > 0.01": lambda o: o["support"] < 0.5 or o["variance"] > 0.01,
    **{
        f"support < 0.25 or variance > 0.02 or second peak > {peak}": (
            lambda o, peak=peak: o["support"] < 0.25 or o["variance"] > 0.02 or o["second_peak"] > peak
        )
        for peak in (0.3, 0.4, 0.5, 0.6, 0.7)
    },
}


def second_peak(maps: torch.Tensor, floor: float = 0.3) -> torch.Tensor:
    """The peak of a map outside its main region, over its maximum: [B, K] in [0, 1].

    maps [B, K, H, W]. Regions are the 8-connected parts of the map at or above `floor` of its
    maximum; the main region holds the maximum. 0 when the map is one region: a second copy of an
    object that the centroid and the variance miss (a small copy far from a large one) shows here."""
    height, width = maps.shape[-2:]
    peak = maps.flatten(2).amax(dim=2).clamp_min(1e-12)[..., None, None]
    relative = maps / peak
    inside = relative >= floor
    # each pixel's label spreads to its neighbours inside the mask: H + W rounds fill any region
    # that is not a long winding path
    ids = torch.arange(1, height * width + 1, device=maps.device, dtype=torch.float32).view(1, 1, height, width)
    labels = (ids * inside).flatten(0, 1).unsqueeze(1)  # [B*K, 1, H, W]
    mask = inside.flatten(0, 1).unsqueeze(1)
    for _ in range(height + width):
        labels = F.max_pool2d(labels, kernel_size=3, stride=1, padding=1) * mask
    labels = labels.view_as(maps)
    main = labels.flatten(2).gather(2, relative.flatten(2).argmax(dim=2, keepdim=True))[..., None]
    return (relative * (inside & (labels != main))).flatten(2).amax(dim=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=200, help="images per suite")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    scene_pipe = ScenePipeline.from_pretrained("shapes")
    objects = []
    for suite in SUITES:
        items = make_suite(suite, args.images, args.seed)
        for start in range(0, len(items), 25):
            chunk = items[start : start + 25]
            result = scene_pipe(
                [item.graph for item in chunk], seed=[item.seed for item in chunk], record_maps=True, progress=False
            )
            levels = result.maps[max(result.maps)]
            maps = levels[max(levels)].float()
            centroids, variances = centroids_and_variances(maps)
            support = centroid_support(maps, centroids)
            peaks = second_peak(maps)
            for b, item in enumerate(chunk):
                colors = {o.id: o.attributes[0] for o in item.graph.objects}
                instances = detect(np.asarray(result.images[b])).instances
                for k, object_id in enumerate(result.objective.object_ids[b]):
                    objects.append(
                        {
                            "suite": suite,
                            "item": start + b,
                            "object": object_id,
                            "drawn": instances.get(colors[object_id], 0),
                            "support": round(float(support[b, k]), 4),
                            "variance": round(float(variances[b, k]), 5),
                            "second_peak": round(float(peaks[b, k]), 4),
                        }
                    )
        print(f"{suite}: {len(objects)} objects so far", flush=True)
    twice = [o for o in objects if o["drawn"] >= 2]
    once = [o for o in objects if o["drawn"] == 1]
    rows = {}
    for name, rule in RULES.items():
        rows[name] = {
            "drawn twice, flagged": sum(map(rule, twice)),
            "drawn twice": len(twice),
            "drawn once, flagged": sum(map(rule, once)),
            "drawn once": len(once),
        }
        print(f"{name}: {rows[name]}")
    if args.json:
        columns = list(objects[0])
        report = {"images_per_suite": args.images, "seed": args.seed, "rules": rows, "columns": columns}
        table = ",\n".join(json.dumps([o[c] for c in columns]) for o in objects)  # one object per line
        args.json.write_text(json.dumps(report, indent=2)[:-2] + ',\n  "objects": [\n' + table + "\n  ]\n}\n")


if __name__ == "__main__":
    main()
