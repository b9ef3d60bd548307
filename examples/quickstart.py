"""Guided generation on the embedded shapes model, with the pictures of what guidance did.

python examples/quickstart.py [OUT_DIR]
"""

import sys
from pathlib import Path

import torch

from infsplign_scene import ScenePipeline, analyze, parse

out = Path(sys.argv[1] if len(sys.argv) > 1 else "quickstart_out")
out.mkdir(parents=True, exist_ok=True)

prompt = "a red circle to the left of a blue square, a green triangle above the blue square"
graph = parse(prompt)
print("relations:", [str(r) for r in graph.relations])
print(analyze(graph))

scene_pipe = ScenePipeline.from_pretrained("shapes")  # an embedded model: no download, CPU is fine
if torch.cuda.is_available():  # replay guided steps from a CUDA graph: no kernel launch cost (docs/performance.md)
    scene_pipe.to("cuda")
    scene_pipe.config = scene_pipe.config.model_copy(update={"cuda_graph": True, "measure_first": False})
for name, eta in (("unguided", 0.0), ("guided", None)):
    config = scene_pipe.config if eta is None else scene_pipe.config.model_copy(update={"eta": eta})
    result = scene_pipe(graph, seed=0, config=config, record_maps=True)  # the model family's steps and CFG
    result.images[0].resize((256, 256), 0).save(out / f"{name}.png")
    if name == "guided":
        result.plot_attention(path=out / "attention.png")
        result.plot_trace(path=out / "trace.png")
        print("satisfied at the last guided step:", result.final_satisfied()[0])
print(f"wrote {out}/unguided.png, guided.png, attention.png, trace.png")
