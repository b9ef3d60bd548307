"""Guided steps replayed from a CUDA graph (`GuidanceConfig.cuda_graph`).

At Stable Diffusion 1.x's size a large GPU finishes each kernel before the host has launched the
next, so an eager guided step (thousands of kernels) costs what launching them costs. A CUDA
graph records the step once and replays every kernel with one launch (docs/performance.md).

A replay repeats the recorded kernels on the same memory and nothing else: no Python runs. So the
step reads its inputs from buffers that are refilled before each replay (latents, timestep, and the
scheduler's input scale, which schedulers look up on the host by their step index), and its outputs
are overwritten by the next replay.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch

from .compile import Objective
from .config import GuidanceConfig
from .step import GuidedStep, guided_step

Output = TypeVar("Output")


def capture(run: Callable[[], Output], warmups: int = 2) -> tuple[torch.cuda.CUDAGraph, Output]:
    """Record `run()` as a CUDA graph, after `warmups` eager calls on a side stream (as
    `torch.cuda.graph` asks: they settle lazily initialised state such as cuBLAS workspaces).

    Returns the graph and what `run` returned while it was recorded: tensors that every
    `graph.replay()` overwrites in place."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(warmups):
            run()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        output = run()
    return graph, output


class _ScaledInput:
    """The scheduler as a recorded step sees it: `scale_model_input` multiplies by a device scalar
    that the host refreshes before each replay (a scheduler computes the scale from its step
    index on the host, which a replay would never read again)."""

    def __init__(self, factor: torch.Tensor) -> None:
        self.factor = factor

    def scale_model_input(self, sample: torch.Tensor, timestep: Any = None) -> torch.Tensor:
        return sample * self.factor


class CapturedGuidedStep:
    """`guided_step` recorded once as a CUDA graph and replayed at every later step.

    The arguments are `guided_step`'s, from the step at which guidance starts (recording runs
    `warmups` eager steps, whose results are dropped); prompt embeddings, token matrix and
    objective stay fixed for the run. `measure_first` is not offered: it picks the images to
    differentiate on the host, which a replay cannot do.

    >>> step = CapturedGuidedStep(unet, scheduler, latents, t, embeds, store, matrix, objective, weights)
    >>> result = step(latents, t)   # a GuidedStep whose tensors the next call overwrites
    """

    def __init__(
        self,
        unet: torch.nn.Module,
        scheduler: Any,
        latents: torch.Tensor,
        t: torch.Tensor,
        prompt_embeds: torch.Tensor,
        store: Any,
        token_matrix: torch.Tensor,
        objective: Objective,
        weights: GuidanceConfig,
        *,
        warmups: int = 2,
        **options: Any,
    ) -> None:
        if latents.device.type != "cuda":
            raise ValueError(f"a CUDA graph needs the latents on a CUDA device, not {latents.device}")
        self.scheduler = scheduler
        self.latents = latents.clone()
        self.t = torch.as_tensor(t, device=latents.device).clone()
        self.factor = self._scale(t)
        scaled = _ScaledInput(self.factor)
        self.graph, self.output = capture(
            lambda: guided_step(
                unet, scaled, self.latents, self.t, prompt_embeds, store, token_matrix, objective, weights, **options
            ),
            warmups,
        )

    def _scale(self, t: torch.Tensor) -> torch.Tensor:
        one = torch.ones((), device=self.latents.device, dtype=self.latents.dtype)
        return torch.as_tensor(self.scheduler.scale_model_input(one, t), device=one.device, dtype=one.dtype)

    def __call__(self, latents: torch.Tensor, t: torch.Tensor) -> GuidedStep:
        """The guided step at these latents and timestep: valid until the next call."""
        self.latents.copy_(latents)
        self.t.copy_(t)
        self.factor.copy_(self._scale(t))
        self.graph.replay()
        return self.output
