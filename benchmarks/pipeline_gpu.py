"""The embedded pipeline end to end on a GPU: seconds per image, and how repeatable the images are.

    python benchmarks/pipeline_gpu.py [--json PATH] [--images 100] [--device cuda]

1. Latency of one image, in float32 and float16 (median of 3 calls after a warm-up): unguided;
   guided with the model family's defaults; guided at every step (`skip_satisfied` off), eagerly
   and replayed from a CUDA graph (`cuda_graph`).
2. Repeatability: suite (a) items (seed 2) sampled twice eagerly and once with `cuda_graph`, with
   the defaults and with the backward for every image (`measure_first` off): pixel differences
   between the runs (a GPU's backward adds with atomics, in no fixed order) and each run's metrics.
On CPU (`--device cpu`, for a look at the output) the CUDA-graph rows are left out.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from infsplign_scene.guidance import GuidanceConfig, ScenePipeline
from infsplign_scene.lab.shapes.bench import generate, make_suite, score

SCENE = "a red circle left of a blue square"


def seconds_per_call(scene_pipe: ScenePipeline, config: GuidanceConfig, repeats: int = 3) -> float:
    scene_pipe(SCENE, seed=0, config=config, progress=False)  # warm-up
    times = []
    for _ in range(repeats):
        if scene_pipe.device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        scene_pipe(SCENE, seed=0, config=config, progress=False)  # ends with the PIL image: the GPU is done
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def latency(scene_pipe: ScenePipeline, cuda: bool) -> dict:
    rows = {}
    for dtype in (torch.float32, torch.float16):
        scene_pipe.to(dtype=dtype)
        defaults = scene_pipe.config
        every_step = defaults.updated(**{"skip_satisfied": False})
        configs = {
            "unguided": defaults.updated(**{"eta": 0.0}),
            "guided (defaults)": defaults,
            "guided every step": every_step,
        }
        if cuda:
            configs["guided every step, CUDA graph"] = every_step.updated(**{"cuda_graph": True})
        seconds = {name: seconds_per_call(scene_pipe, config) for name, config in configs.items()}
        rows[str(dtype)] = {
            "seconds": seconds,
            "over_unguided": {name: value / seconds["unguided"] for name, value in seconds.items()},
        }
        print(json.dumps({str(dtype): rows[str(dtype)]}, indent=1), flush=True)
    scene_pipe.to(dtype=torch.float32)
    return rows


def pixel_difference(ours: np.ndarray, reference: np.ndarray) -> dict:
    """Largest per-image pixel difference [N, H, W, 3] (0-255), and how many images differ."""
    per_image = np.abs(ours - reference).reshape(len(ours), -1).max(axis=1)
    return {
        "max": int(per_image.max()),
        "images_differing": int((per_image > 0).sum()),
        "images_differing_by_over_8": int((per_image > 8).sum()),
    }


def repeatability(scene_pipe: ScenePipeline, images: int, cuda: bool) -> dict:
    base = scene_pipe.config
    items = make_suite("a_two_objects", images, 2)
    runs = {"eager": {}, "eager again": {}}
    if cuda:
        runs["CUDA graph"] = {"cuda_graph": True}
    out = {}
    for label, update in (("defaults", {}), ("backward for every image", {"measure_first": False})):
        pixels, metrics = {}, {}
        for run, extra in runs.items():
            config = base.updated(**{**update, **extra})
            sampled, graphs, _ = generate(scene_pipe, items, config, 50, **scene_pipe.preset.sampling.model_dump())
            pixels[run] = np.stack([np.asarray(image, dtype=np.int16) for image in sampled])
            metrics[run], _ = score(items, sampled, graphs)
        against = {run: pixel_difference(pixels[run], pixels["eager"]) for run in runs if run != "eager"}
        out[label] = {"against_eager": against, "metrics": metrics}
        print(json.dumps({label: out[label]["against_eager"]}), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--images", type=int, default=100, help="suite (a) items for the repeatability runs")
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    scene_pipe = ScenePipeline.from_pretrained("shapes").to(args.device)
    cuda = scene_pipe.device.type == "cuda"
    results = {
        "device": torch.cuda.get_device_name() if cuda else args.device,
        "torch": torch.__version__,
        "latency_seconds": latency(scene_pipe, cuda),
        "repeatability": repeatability(scene_pipe, args.images, cuda),
    }
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
