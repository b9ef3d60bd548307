"""Seconds per image of the embedded model by torch thread count, on a quiet and on a loaded machine.

    python benchmarks/threads.py [--model shapes] [--calls 3] [--json docs/results/threads.json]

"Loaded" runs one busy process per core beside the sampling (a load generator of this script's
own: a pure-Python loop, as another program would keep a core busy). Each setting is measured in
a fresh process, after one warm-up call: the median of `--calls` calls of a three-object prompt.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROMPT = "a red circle left of a blue square, a green triangle above the red circle"
MEASURE = """
import json, sys, time, torch
from infsplign_scene import ScenePipeline
torch.set_num_threads({threads})
pipe = ScenePipeline.from_pretrained({model!r})
preset = pipe.preset.sampling.updated(cpu_threads=None)  # this script sets the threads itself
pipe.preset = pipe.preset.updated(sampling=preset.model_dump())
pipe({prompt!r}, seed=0, progress=False)
seconds = []
for seed in range({calls}):
    started = time.perf_counter()
    pipe({prompt!r}, seed=seed + 1, progress=False)
    seconds.append(time.perf_counter() - started)
print(json.dumps(seconds))
"""


def busy(stop_at: float) -> None:
    while time.time() < stop_at:
        sum(i * i for i in range(10_000))


def measure(model: str, threads: int, calls: int) -> list[float]:
    code = MEASURE.format(threads=threads, model=model, prompt=PROMPT, calls=calls)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="shapes")
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    results = {"cores": cores, "model": args.model, "prompt": PROMPT, "seconds": {}}
    for load in ("quiet", "loaded"):
        for threads in sorted({1, cores}):
            workers = []
            if load == "loaded":
                stop_at = time.time() + 600
                workers = [multiprocessing.Process(target=busy, args=(stop_at,), daemon=True) for _ in range(cores)]
                for worker in workers:
                    worker.start()
            try:
                seconds = measure(args.model, threads, args.calls)
            finally:
                for worker in workers:
                    worker.terminate()
            results["seconds"][f"{load}, {threads} thread(s)"] = seconds
            print(f"{load:6s} threads={threads}: median {statistics.median(seconds):.2f} s {seconds}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
