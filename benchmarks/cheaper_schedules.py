"""Cheaper guidance schedules on the embedded shapes model: time saved against accuracy kept.

    python benchmarks/cheaper_schedules.py [--images 100] [--json PATH]

Suite (a) items (seed 2, disjoint from the benchmark's), sampled with the model family's default
guidance (every step; an image whose relations all hold with margin gets no update, and once at
least half the batch was settled, every image is measured without grad first and only the others
get a backward) and with: the backward for every image at every step (`measure_first` off: the
same images, so the time it saves is measured at equal accuracy), guidance on the first 60% and
the first 30% of the steps, settled images pushed too (`skip_satisfied` off: every image gets an
update at every step), and the guided pass in bfloat16. The share of image-steps that ran a
backward is reported too. On CPU the default and the backward-for-every-image variants also run
with the two CFG forwards side by side (`cfg_forward="concurrent"`); with `--device cuda`, the
guided variants that can be replayed from a CUDA graph (`cuda_graph`) are run that way instead.
Times are seconds per image measured in this one run (batches of 50; on CPU with 2 threads).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from infsplign_scene.guidance import ScenePipeline
from infsplign_scene.lab.shapes.bench import generate, make_suite, score

VARIANTS = {
    "unguided": {"eta": 0.0},
    "default (whole schedule)": {},
    "backward for every image": {"measure_first": False},
    "first 60%": {"start": 0.0, "end": 0.6},
    "first 30%": {"start": 0.0, "end": 0.3},
    "settled images pushed too": {"skip_satisfied": False},
    "bfloat16 guided pass": {"guidance_precision": "bfloat16"},
}
# the two CFG forwards side by side in two threads (a CPU option)
CPU_VARIANTS = {
    "default, concurrent CFG": {"cfg_forward": "concurrent"},
    "backward for every image, concurrent CFG": {"measure_first": False, "cfg_forward": "concurrent"},
}
# steps that measure first (the default's, once half a batch is settled) run eagerly
CUDA_GRAPH_VARIANTS = {
    "default, CUDA graph": {"cuda_graph": True},
    "backward for every image, CUDA graph": {"measure_first": False, "cuda_graph": True},
    "settled images pushed too, CUDA graph": {"skip_satisfied": False, "cuda_graph": True},
}


def backward_share(traces: list[list[dict]], images: int, steps: int) -> float:
    """Share of all image-steps (guided or not) whose gradient was computed."""
    computed = sum(sum(record.get("backward", [])) for trace in traces for record in trace)
    return computed / (images * steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (cuda adds the CUDA-graph variants)")
    args = parser.parse_args()
    scene_pipe = ScenePipeline.from_pretrained("shapes").to(args.device)
    variants = {**VARIANTS, **(CUDA_GRAPH_VARIANTS if scene_pipe.device.type == "cuda" else CPU_VARIANTS)}
    base = scene_pipe.config
    items = make_suite("a_two_objects", args.images, 2)
    # warm-up at the measured batch size in both modes: oneDNN sets kernels up once per tensor shape
    for warm in (base, base.updated(**{"eta": 0.0})):
        generate(scene_pipe, items[:50], warm, 50, **scene_pipe.preset.sampling.model_dump())
    rows = {}
    for name, update in variants.items():
        traces: list = []
        config = base.updated(**update)
        images, graphs, seconds = generate(
            scene_pipe, items, config, 50, traces=traces, **scene_pipe.preset.sampling.model_dump()
        )
        metrics, _ = score(items, images, graphs)
        rows[name] = {
            **metrics,
            "seconds_per_image": seconds / len(items),
            "backward_share": backward_share(traces, len(items), scene_pipe.preset.sampling.num_inference_steps),
        }
        print(
            f"{name:<26} relation {metrics['relation_accuracy']:.3f}  objects {metrics['object_accuracy']:.3f}  "
            f"{seconds / len(items):.3f} s/image  backward on {rows[name]['backward_share']:.0%} of image-steps"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
