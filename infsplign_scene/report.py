"""Pictures of what guidance did: attention maps over the image, and traces over the steps.

matplotlib runs headless (Agg). Both functions return the figure and save it when given a path.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .result import ComposeResult

SATISFIED, VIOLATED, UNCERTAIN = "#2ca02c", "#d62728", "#ff7f0e"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _labels(result: ComposeResult, image: int) -> tuple[list[str], list[str]]:
    objects = result.objective.object_ids[image]
    relations = [f"{r.subject} {r.predicate} {r.object}" for r in result.objective.relations[image]]
    return objects, relations


def plot_attention(result: ComposeResult, step: int | None = None, path: str | Path | None = None, image: int = 0):
    """One row per object, one column per level: its map over the image, centroid and a circle of
    radius sqrt(variance); a last column draws every relation as an arrow from subject to object,
    green when satisfied at that step, red when violated, orange when uncertain (a split map)."""
    if not result.maps:
        raise ValueError("no attention maps were recorded: sample with record_maps=True (CLI: --plot DIR)")
    step = max(result.maps) if step is None else step
    if step not in result.maps:
        raise ValueError(f"no maps at step {step}; recorded steps: {sorted(result.maps)}")
    plt = _pyplot()
    levels = result.maps[step]
    record = result.trace[step]
    objects, relations = _labels(result, image)
    picture = np.asarray(result.images[image].convert("RGB"), dtype=np.float32) / 255
    heights = sorted(levels)
    figure, axes = plt.subplots(
        len(objects), len(heights) + 1, figsize=(3 * (len(heights) + 1), 3 * len(objects)), squeeze=False
    )
    for k, object_id in enumerate(objects):
        for column, height in enumerate(heights):
            axis = axes[k, column]
            heat = levels[height][image, k].numpy()
            axis.imshow(picture, extent=(0, 1, 1, 0))
            axis.imshow(heat / max(heat.max(), 1e-12), cmap="magma", alpha=0.55, extent=(0, 1, 1, 0))
            cx, cy = record["centroids"][str(height)][image][k]
            spread = float(np.sqrt(max(record["variances"][str(height)][image][k], 0.0)))
            axis.plot(cx, cy, "c+", markersize=12, markeredgewidth=2)
            axis.add_patch(plt.Circle((cx, cy), spread, fill=False, color="cyan", linewidth=1.5))
            axis.set_title(f"{object_id} · {height}x{height}", fontsize=9)
            axis.set_xlim(0, 1)
            axis.set_ylim(1, 0)
            axis.set_xticks([])
            axis.set_yticks([])
    finest = str(heights[-1])
    for row in range(len(objects)):
        axis = axes[row, -1]
        axis.axis("off")
    axis = axes[0, -1]
    axis.axis("on")
    axis.imshow(picture, extent=(0, 1, 1, 0))
    centroids = record["centroids"][finest][image]
    for k, object_id in enumerate(objects):
        axis.annotate(object_id, centroids[k], color="white", fontsize=8, ha="center", va="bottom")
    for r, relation in enumerate(result.objective.relations[image]):
        a, b = objects.index(relation.subject), objects.index(relation.object)
        ok = record["satisfied"][image][r]
        doubt = record["uncertain"][image][r]
        color = UNCERTAIN if doubt else (SATISFIED if ok else VIOLATED)
        axis.annotate(
            "", xy=centroids[b], xytext=centroids[a], arrowprops={"arrowstyle": "->", "color": color, "linewidth": 2}
        )
    axis.set_title(f"step {step}: relations", fontsize=9)
    axis.set_xticks([])
    axis.set_yticks([])
    figure.suptitle(" | ".join(relations), fontsize=9)
    figure.tight_layout()
    if path is not None:
        figure.savefig(path, dpi=110)
    return figure


def plot_trace(result: ComposeResult, path: str | Path | None = None, image: int = 0):
    """Per-relation loss (x where violated), satisfaction, centroid paths in the image plane,
    gradient norm and opposed share (steps without an update shaded), and the pairwise gradient
    cosine of relations over steps."""
    plt = _pyplot()
    guided = [r for r in result.trace if "satisfied" in r]
    if not guided:
        raise ValueError("the trace has no guided step")
    objects, relations = _labels(result, image)
    steps = [r["step"] for r in guided]
    figure, axes = plt.subplots(2, 3, figsize=(15, 8))

    axis = axes[0, 0]
    with_loss = [r for r in guided if "relation_loss" in r]
    for index, label in enumerate(relations):
        losses = [r["relation_loss"][image][index] for r in with_loss]
        line = axis.plot([r["step"] for r in with_loss], losses, label=label)[0]
        bad = [(r["step"], r["relation_loss"][image][index]) for r in with_loss if not r["satisfied"][image][index]]
        if bad:
            axis.plot(*zip(*bad, strict=True), "x", color=line.get_color())
    axis.set_title("relation loss (x: violated)")
    axis.set_xlabel("step")
    axis.legend(fontsize=7)

    axis = axes[0, 1]
    satisfied = np.array([[r["satisfied"][image][i] for r in guided] for i in range(len(relations))], dtype=float)
    axis.imshow(
        satisfied,
        aspect="auto",
        cmap="RdYlGn",
        vmin=0,
        vmax=1,
        extent=(steps[0] - 0.5, steps[-1] + 0.5, len(relations) - 0.5, -0.5),
    )
    axis.set_yticks(range(len(relations)), relations, fontsize=7)
    axis.set_title("satisfied (green) per step")
    axis.set_xlabel("step")

    axis = axes[0, 2]
    finest = max(guided[0]["centroids"], key=int)
    if result.images:
        axis.imshow(np.asarray(result.images[image].convert("RGB")), extent=(0, 1, 1, 0), alpha=0.5)
    for k, object_id in enumerate(objects):
        path_xy = np.array([r["centroids"][finest][image][k] for r in guided if "centroids" in r])
        if len(path_xy):
            line = axis.plot(path_xy[:, 0], path_xy[:, 1], "-", label=object_id)[0]
            axis.plot(*path_xy[0], "o", color=line.get_color())
            axis.plot(*path_xy[-1], "s", color=line.get_color())
    axis.set_xlim(0, 1)
    axis.set_ylim(1, 0)
    axis.set_title(f"centroid paths ({finest}x{finest}; o start, s end)")
    axis.legend(fontsize=7)

    axis = axes[1, 0]
    with_grad = [r for r in guided if "grad_norm" in r]
    axis.plot([r["step"] for r in with_grad], [r["grad_norm"][image] for r in with_grad], label="|grad|")
    for record in guided:  # steps where this image got no update: its relations held with margin
        if "updated" in record and not record["updated"][image]:
            axis.axvspan(record["step"] - 0.5, record["step"] + 0.5, color="0.85", zorder=0)
    axis.set_xlabel("step")
    axis.set_title("gradient norm (grey: settled, no update)")
    twin = axis.twinx()
    twin.plot([r["step"] for r in with_grad], [r["opposed"][image] for r in with_grad], "k--", label="opposed share")
    twin.set_ylim(-0.05, 1.05)
    twin.set_ylabel("share of relations opposed")

    axis = axes[1, 1]
    pairs = [(i, j) for i in range(len(relations)) for j in range(i + 1, len(relations))]
    if pairs and with_grad:
        cosine = np.array([[r["cosine"][image][i][j] for r in with_grad] for i, j in pairs])
        axis.imshow(cosine, aspect="auto", cmap="coolwarm", vmin=-1, vmax=1)
        axis.set_yticks(range(len(pairs)), [f"{i}·{j}" for i, j in pairs], fontsize=7)
    axis.set_title("gradient cosine of relation pairs")
    axis.set_xlabel("guided step")

    axes[1, 2].axis("off")
    axes[1, 2].text(0, 1, "\n".join(f"{i}: {label}" for i, label in enumerate(relations)), va="top", fontsize=8)
    figure.tight_layout()
    if path is not None:
        figure.savefig(path, dpi=110)
    return figure
