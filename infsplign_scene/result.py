"""What a guided sampling run returns: images, the graphs used, the objective and a trace."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .compile import Objective
from .config import GuidanceConfig, SamplingDefaults
from .losses import colour_copies
from .scene import SceneGraph
from .step import GuidedStep, finite_rows, per_image


@dataclass
class ComposeResult:
    """Images, the graphs used (after conflict resolution), and a JSON-serialisable trace."""

    images: list
    graphs: list[SceneGraph]
    objective: Objective
    trace: list[dict] = field(default_factory=list)
    config: GuidanceConfig | None = None
    seconds: float = 0.0
    maps: dict[int, dict[int, torch.Tensor]] = field(default_factory=dict)  # step -> height -> [B, K, h, w]
    sampling: SamplingDefaults | None = None  # the sampling settings used
    prompts: list[str] = field(default_factory=list)  # per image, as given (before `prompt_style`)
    seeds: list[int] | None = None  # per image, when sampled from seeds
    model: str = ""  # where the pipeline was loaded from, else its class

    def metadata(self, image: int = 0) -> dict:
        """What made image `image`, JSON-ready: prompt, graph, seed, model, sampling and guidance settings."""
        graph = self.graphs[image]
        return {
            "prompt": self.prompts[image] if self.prompts else graph.prompt,
            "encoded_prompt": graph.prompt,
            "graph": graph.model_dump(mode="json", exclude_none=True),
            "seed": self.seeds[image] if self.seeds else None,
            "model": self.model,
            "sampling": self.sampling.model_dump() if self.sampling else None,
            "guidance": self.config.model_dump() if self.config else None,
            "software": f"infsplign-scene {_version()}",
        }

    def save(self, path: str | Path, image: int = 0, upscale: int = 1) -> Path:
        """Write image `image` as a PNG whose text chunks carry `metadata` ("prompt", and all of it as
        JSON under "infsplign-scene"); `upscale` enlarges it by pixel repetition, for viewing."""
        from PIL import PngImagePlugin

        picture = self.images[image]
        if upscale > 1:
            picture = picture.resize((picture.width * upscale, picture.height * upscale), resample=0)  # nearest
        info = PngImagePlugin.PngInfo()
        info.add_text("prompt", self.metadata(image)["prompt"] or "")
        info.add_text("infsplign-scene", json.dumps(self.metadata(image)))
        path = Path(path)
        picture.save(path, format="PNG", pnginfo=info)
        return path

    @property
    def graph(self) -> SceneGraph:
        return self.graphs[0]

    def plot_attention(self, step: int | None = None, path: str | Path | None = None, image: int = 0):
        """Each object's map per level over the image, with centroid, spread and relation arrows.

        Needs `record_maps=True` at sampling time. Returns the matplotlib figure."""
        from .report import plot_attention

        return plot_attention(self, step=step, path=path, image=image)

    def plot_trace(self, path: str | Path | None = None, image: int = 0):
        """Relation losses and satisfaction, centroid paths, gradient norm and conflicts over the steps."""
        from .report import plot_trace

        return plot_trace(self, path=path, image=image)

    def final_satisfied(self, checked: bool = True) -> list[list[bool | None]]:
        """Per image, each relation's state at the last guided step's maps: True (satisfied), False
        (violated) or None (uncertain: the subject or object seems drawn twice, or its map is split
        over several places, so its centroid may belong to no object; the `split_*` settings of
        `GuidanceConfig`). `checked=False`: the centroids' verdict alone, never None (to measure
        what the checks change)."""
        return final_states(self.trace, checked)


def final_states(trace: list[dict], checked: bool = True) -> list[list[bool | None]]:
    """Per image, each relation's state at the trace's last guided step (None: uncertain, unless
    not `checked`)."""
    for record in reversed(trace):
        if "satisfied" in record:
            uncertain = (checked and record.get("uncertain")) or [[False] * len(row) for row in record["satisfied"]]
            return [
                [None if doubt else ok for ok, doubt in zip(row, doubts, strict=True)]
                for row, doubts in zip(record["satisfied"], uncertain, strict=True)
            ]
    return []


def record_step(step: GuidedStep, config: GuidanceConfig, record: dict, maps: dict | None) -> None:
    """Write what a guided step measured into its trace record (and its maps into `maps`)."""
    value, finite = step.value, finite_rows(step)
    grad = torch.where(per_image(finite, step.grad), step.grad, torch.zeros_like(step.grad))
    record.update(
        loss=value.total.tolist(),
        relation_loss=value.relation_loss.tolist(),
        satisfied=value.satisfied.tolist(),
        uncertain=value.uncertain.tolist(),
        centroids={str(h): c.tolist() for h, c in value.centroids.items()},
        variances={str(h): v.tolist() for h, v in value.variances.items()},
        backward=step.backward.tolist(),
        grad_norm=grad.flatten(1).norm(dim=1).tolist(),
        cosine=step.report.cosine.tolist(),
        opposed=step.report.opposed.tolist(),
    )
    if value.second_copy is not None:
        record["second_copy"] = value.second_copy.tolist()
    if maps is not None:
        maps[record["step"]] = {h: m.cpu() for h, m in step.levels.items()}
    if not finite.all():
        skipped = [b for b, ok in enumerate(finite.tolist()) if not ok]
        record["warning"] = f"non-finite loss or gradient for images {skipped}: their update was skipped"
    if config.skip_satisfied:
        record["updated"] = (~value.settled).tolist()


def record_colour_copies(
    record: dict, levels: dict[int, torch.Tensor], pixels: torch.Tensor, objective: Objective, bound: float
) -> None:
    """The image check of objects drawn twice, added to the last guided step's record: each
    object's `colour_copy` (`losses.colour_copies` of its finest map on the decoded image, pixels
    [B, 3, H, W] in [0, 1]); a relation whose subject or object reaches `bound` becomes uncertain."""
    finest = levels[max(levels)]
    copies = colour_copies(finest, pixels.to(finest.device))
    doubtful = objective.involving(copies >= bound).cpu()
    record["colour_copy"] = copies.tolist()
    record["uncertain"] = (torch.tensor(record["uncertain"], dtype=torch.bool) | doubtful).tolist()


def _version() -> str:
    from . import __version__

    return __version__
