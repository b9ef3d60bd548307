"""How well the split-map rule (`losses.split_maps`) tells objects drawn twice from objects drawn once.

    python benchmarks/split_maps.py [--images 200] [--seed 7] [--json docs/results/split_maps.json]

Guided images of the shapes model's suites (a)-(d) of `bench shapes` (its preset, its prompts);
for every object, the label comes from the image (how many instances of its colour the exact
detector finds, `DetectionResult.instances`) and the features from the last guided step on the
finest level: the map's value at its centroid over its maximum (`support`), its variance, the
peak of its second-strongest connected region above 0.3 of its maximum (`second_peak`), and how
much the best place outside the main region of the object's resemblance map looks like it
(`second_copy`, `losses.second_copies`); and from the decoded image, how much the best place
outside the object's main region has its colour (`colour_copy`, `losses.colour_copies`, as the
report computes it; and `colour_s{strength}_f{floor}` for the other settings of the grid the
defaults were chosen from). Prints how many objects drawn twice, and drawn once, each rule flags;
`--json` also keeps every object's features, so that other rules can be judged without sampling
again.

The detector that labels and `colour_copy` both read colour, so on this model the image check is
judged at its best; on a model whose objects are not one flat colour it tells less.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from infsplign_scene import ScenePipeline
from infsplign_scene.lab.shapes.bench import make_suite
from infsplign_scene.lab.shapes.detector import detect
from infsplign_scene.losses import centroid_support, centroids_and_variances, colour_copies, second_region_peak

SUITES = ("a_two_objects", "b_three_objects", "c_four_objects", "d_conflict_drop")
# the colour check's settings tried: a pixel's least offset from the background, relative to the
# object's (`strength`), and where regions are cut (`floor`)
COLOUR_GRID = [(strength, floor) for strength in (0.2, 0.3, 0.5) for floor in (0.7, 0.85, 0.95)]
MAP_TESTS = lambda o: o["support"] < 0.25 or o["variance"] > 0.02  # noqa: E731
PRESET = lambda o: o["second_copy"] >= 0.9 or o["colour_copy"] >= 0.9  # noqa: E731
RULES = {
    "support < 0.25": lambda o: o["support"] < 0.25,
    "variance > 0.02": lambda o: o["variance"] > 0.02,
    "support < 0.25 or variance > 0.02": MAP_TESTS,
    "support < 0.5 or variance > 0.01": lambda o: o["support"] < 0.5 or o["variance"] > 0.01,
    **{
        f"support < 0.25 or variance > 0.02 or second peak > {peak}": (
            lambda o, peak=peak: MAP_TESTS(o) or o["second_peak"] > peak
        )
        for peak in (0.3, 0.5, 0.7)
    },
    **{
        f"support < 0.25 or variance > 0.02 or second copy >= {level}": (
            lambda o, level=level: MAP_TESTS(o) or o["second_copy"] >= level
        )
        for level in (0.8, 0.85, 0.87, 0.89, 0.9, 0.91, 0.93, 0.95)
    },
    **{f"colour copy >= {level}": (lambda o, level=level: o["colour_copy"] >= level) for level in (0.8, 0.9)},
    **{
        f"second copy >= 0.9 or colour (strength {strength}, floor {floor}) >= {level}": (
            lambda o, name=f"colour_s{strength}_f{floor}", level=level: o["second_copy"] >= 0.9 or o[name] >= level
        )
        for strength, floor in COLOUR_GRID
        for level in (0.8, 0.9, 0.95)
    },
    "second copy >= 0.9 or colour copy >= 0.9 (the shapes preset)": PRESET,
    "support < 0.25 or variance > 0.02 or second copy >= 0.9 or colour copy >= 0.9": lambda o: (
        MAP_TESTS(o) or PRESET(o)
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=200, help="images per suite")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    scene_pipe = ScenePipeline.from_pretrained("shapes")
    config = scene_pipe.config.model_copy(update={"split_resemblance": 1.0, "split_colour": 1.0})  # keep the evidence
    objects = []
    for suite in SUITES:
        items = make_suite(suite, args.images, args.seed)
        for start in range(0, len(items), 25):
            chunk = items[start : start + 25]
            result = scene_pipe(
                [item.graph for item in chunk],
                seed=[item.seed for item in chunk],
                config=config,
                record_maps=True,
                progress=False,
                output_type="pt",
            )
            copies = next(r["second_copy"] for r in reversed(result.trace) if "second_copy" in r)
            colours = next(r["colour_copy"] for r in reversed(result.trace) if "colour_copy" in r)
            levels = result.maps[max(result.maps)]
            maps = levels[max(levels)].float()
            centroids, variances = centroids_and_variances(maps)
            support = centroid_support(maps, centroids)
            peaks = second_region_peak(maps, 0.3)
            grid = {f"colour_s{s}_f{f}": colour_copies(maps, result.images, s, f) for s, f in COLOUR_GRID}
            pictures = (result.images.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()
            for b, item in enumerate(chunk):
                colors = {o.id: o.attributes[0] for o in item.graph.objects}
                instances = detect(pictures[b]).instances
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
                            "second_copy": round(float(copies[b][k]), 4),
                            "colour_copy": round(float(colours[b][k]), 4),
                            **{name: round(float(values[b, k]), 4) for name, values in grid.items()},
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
