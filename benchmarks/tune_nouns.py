"""Sweep of the sampling and guidance settings for the embedded noun model, by rules fixed before it ran.

    python benchmarks/tune_nouns.py [--images 64] [--seed 1] [--out runs/tune_nouns]
        [--json docs/results/tune_nouns.json]

The first `--images` rows of the built-in `nouns_pairs` set, generated and scored as `infsplign-scene
generate` and `score` do (one run folder per setting under `--out`, resumable), on seed 1 (the
benchmark uses seed 0). Two stages:

1. sampling, unguided: classifier-free guidance scale x number of DDIM steps; keeps the setting
   whose images the noun detector reads best (share of images with both objects recognised,
   `--detector nouns`; the lower scale, then fewer steps, on a tie);
2. guidance, with that sampling: the gradient weight `eta` (guided images on the same seeds as
   stage 1's unguided ones); keeps the best share of images with the relation right by forced
   choice (`--detector nouns-forced`, which pairs each named object with a drawn blob), among the
   settings whose recognised objects stay within 3 points of that unguided sampling.

A choice goes into `infsplign_scene/models/nouns/preset.json` only if it holds on the benchmark's
own prompts and seeds (docs/embedded-models.md, "Its preset").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from infsplign_scene import ScenePipeline
from infsplign_scene.lab.detectors import exact_detector
from infsplign_scene.lab.generate import generate
from infsplign_scene.lab.nouns.detector import NounDetector
from infsplign_scene.lab.score import multi_relation, score_run

# 1.5 and 2 were added after 5 and 7.5 read worse than 3
SAMPLING_GRID = [(scale, steps) for scale in (1.5, 2.0, 3.0, 5.0, 7.5) for steps in (40,)]
ETAS = (0.06, 0.12, 0.25)
BOUND = 0.03  # recognised objects may drop this much below unguided sampling


def measure(scene_pipe: ScenePipeline, out: Path, args, arms: tuple[str, ...], sampling: dict, eta: float) -> dict:
    config = scene_pipe.config.updated(eta=eta)
    generate(
        Path("nouns_pairs"), out, scene_pipe, arms=arms, seed=args.seed, limit=args.images,
        config=config, sampling=sampling, progress=False,
    )  # fmt: skip
    strict = score_run(out, exact_detector("nouns"), progress=False)
    forced_out = out.with_name(out.name + "_forced")
    forced_out.mkdir(exist_ok=True)
    for name in ("run.json", "manifest.jsonl", "images"):
        if not (forced_out / name).exists():
            (forced_out / name).symlink_to((out / name).resolve())
    forced = score_run(forced_out, NounDetector(forced=True), progress=False)
    rows = {}
    for arm in arms:
        recognised = multi_relation([r for r in strict if r["arm"] == arm])
        chosen = multi_relation([r for r in forced if r["arm"] == arm])
        rows[arm] = {
            "objects_found": recognised["objects_found"],
            "all_objects_found": recognised["all_objects_found"],
            "forced_relation_accuracy": chosen["relation_accuracy"],
            "forced_all_satisfied": chosen["all_satisfied"],
        }
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("runs/tune_nouns"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    scene_pipe = ScenePipeline.from_pretrained("nouns")
    report: dict = {"images": args.images, "seed": args.seed, "sampling": [], "guidance": []}
    for scale, steps in SAMPLING_GRID:
        sampling = {"guidance_scale": scale, "num_inference_steps": steps}
        row = measure(scene_pipe, args.out / f"cfg{scale}_steps{steps}", args, ("unguided",), sampling, 0.0)
        report["sampling"].append(sampling | row["unguided"])
        print(report["sampling"][-1], flush=True)
    best = max(
        report["sampling"], key=lambda r: (r["all_objects_found"], -r["guidance_scale"], -r["num_inference_steps"])
    )
    sampling = {"guidance_scale": best["guidance_scale"], "num_inference_steps": best["num_inference_steps"]}
    report["chosen_sampling"] = sampling
    for eta in ETAS:
        folder = args.out / f"cfg{sampling['guidance_scale']}_steps{sampling['num_inference_steps']}_eta{eta}"
        row = measure(scene_pipe, folder, args, ("guided",), sampling, eta)
        report["guidance"].append({"eta": eta} | row["guided"])
        print(report["guidance"][-1], flush=True)
    eligible = [r for r in report["guidance"] if r["objects_found"] >= best["objects_found"] - BOUND]
    chosen = max(eligible, key=lambda r: (r["forced_all_satisfied"], -r["eta"]), default=None)
    report["chosen_eta"] = None if chosen is None else chosen["eta"]
    print("chosen:", sampling, "eta", report["chosen_eta"])
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
