"""One guided denoising step: the model passes, the objective on every image and its gradient.

`guided_step` is what `ScenePipeline` runs at each guided step (and what the benchmark times);
`cuda_graphs.CapturedGuidedStep` records it once and replays it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from .attention import object_second_copies
from .compile import ObjectiveValue, statistics
from .config import CfgForward, Combination, SamplingDefaults
from .conflicts import ConflictReport, combine, relation_gradients
from .runtime import ThreadSharing


def object_maps(store, token_matrix: torch.Tensor, conditional_rows: int | None = None) -> dict[int, torch.Tensor]:
    """Each object's map on the coarse and middle levels: {height: [B, K, h, w]} in float32.

    token_matrix [B, K, T] averages the captured token columns; `conditional_rows` keeps the last
    B rows when the capture ran on a CFG batch (unconditional rows first)."""
    levels = {}
    for height in store.resolutions()[:2]:
        maps = store.level(height)  # float32: the capture's softmax runs in float32
        if conditional_rows is not None:
            maps = maps[-conditional_rows:]
        levels[height] = torch.einsum("bkt,bthw->bkhw", token_matrix, maps)
    return levels


@dataclass
class GuidedStep:
    """What one guided step computed; every tensor has batch first."""

    value: ObjectiveValue
    grad: torch.Tensor  # [B, C, h, w] float32 gradient of the objective; zero on rows without backward
    noise_text: torch.Tensor  # [B, C, h, w] conditional noise prediction, detached
    noise_uncond: torch.Tensor | None  # [B, C, h, w] unconditional one, when negative embeddings were given
    levels: dict[int, torch.Tensor]  # height -> [B, K, h, w] object maps, detached
    report: ConflictReport
    backward: torch.Tensor  # [B] bool, the rows whose gradient was computed


@dataclass
class _StepInputs:
    """What every mode of a guided step reads."""

    unet: torch.nn.Module
    scheduler: object
    latents: torch.Tensor
    t: torch.Tensor
    prompt_embeds: torch.Tensor
    negative_embeds: torch.Tensor | None
    store: object
    token_matrix: torch.Tensor
    objective: object
    weights: object
    precision: str
    combination: Combination
    added_cond: dict[str, torch.Tensor] | None = None  # SDXL's pooled text embeddings and time ids, [B, ...]
    negative_added_cond: dict[str, torch.Tensor] | None = None

    def unconditional(self) -> torch.Tensor:
        """The unconditional noise prediction, without grad."""
        with torch.no_grad():
            model_input = self.scheduler.scale_model_input(self.latents, self.t)
            return self.unet(
                model_input,
                self.t,
                encoder_hidden_states=self.negative_embeds,
                added_cond_kwargs=self.negative_added_cond,
            ).sample

    def graph_forward(self, rows: torch.Tensor, joint: bool = False):
        """The forward that records the autograd graph, for the latents of `rows` (every row when
        `joint`, with the unconditional batch riding along as a constant): the guided latents, the
        conditional noise, the unconditional one when joint, and the rows' object maps."""
        guided_latents = self.latents[rows].detach().requires_grad_(True)
        # no cast cache: each weight is cast once per pass anyway, and a CUDA graph cannot record one
        autocast = torch.autocast(
            self.latents.device.type, dtype=torch.bfloat16, enabled=self.precision == "bfloat16", cache_enabled=False
        )
        noise_uncond = None
        with self.store.capturing(), autocast:
            if joint:
                model_input = self.scheduler.scale_model_input(
                    torch.cat([self.latents.detach(), guided_latents]), self.t
                )
                embeds = torch.cat([self.negative_embeds, self.prompt_embeds])
                added = joined(self.negative_added_cond, self.added_cond)
                noise_uncond, noise = self.unet(
                    model_input, self.t, encoder_hidden_states=embeds, added_cond_kwargs=added
                ).sample.chunk(2)
                noise_uncond = noise_uncond.detach().to(self.latents.dtype)
            else:
                model_input = self.scheduler.scale_model_input(guided_latents, self.t)
                noise = self.unet(
                    model_input,
                    self.t,
                    encoder_hidden_states=self.prompt_embeds[rows],
                    added_cond_kwargs=picked(self.added_cond, rows),
                ).sample
        conditional_rows = self.latents.shape[0] if joint else None
        levels = object_maps(self.store, self.token_matrix[rows], conditional_rows)
        return guided_latents, noise, noise_uncond, levels, object_second_copies(self.store, levels, conditional_rows)

    def finish(self, levels, second_copy, guided_latents, rows, noise_text, noise_uncond) -> GuidedStep:
        """The objective on every image's maps, its gradient for `rows`, and the step's results.
        second_copy: [B, K] or None (`object_second_copies`)."""
        self.store.reset()
        batch = self.latents.shape[0]
        stats = statistics(levels)
        leaves = {h: (c.detach().requires_grad_(True), v.detach().requires_grad_(True)) for h, (c, v) in stats.items()}
        value = self.objective.evaluate(leaves, self.weights)
        finest = max(levels)
        value.second_copy = second_copy
        value.uncertain = self.objective.uncertain(
            levels[finest], *stats[finest], self.weights, second_copy=second_copy
        ).detach()
        flat_leaves = [x for pair in leaves.values() for x in pair]
        per_relation = relation_gradients(value.relation_loss, flat_leaves)  # [B, R, D]
        combined, report = combine(per_relation, self.objective.weight.to(per_relation.device), self.combination)
        grad = torch.zeros_like(self.latents, dtype=torch.float32)
        if rows.numel():
            sizes = [leaf[0].numel() for leaf in flat_leaves]
            grad_outputs = [
                g.reshape(leaf.shape) for g, leaf in zip(combined.split(sizes, dim=1), flat_leaves, strict=True)
            ]
            outputs = [x for pair in stats.values() for x in pair]
            grad[rows] = torch.autograd.grad(outputs, guided_latents, grad_outputs=grad_outputs)[0].float()
        value.total, value.relation_loss = value.total.detach(), value.relation_loss.detach()
        # index_fill_, not `backward[rows] = True`, whose value travels from host memory
        backward = torch.zeros(batch, dtype=torch.bool, device=self.latents.device).index_fill_(0, rows, True)
        return GuidedStep(
            value=value,
            grad=grad,
            noise_text=noise_text,
            noise_uncond=noise_uncond,
            levels={h: m.detach() for h, m in levels.items()},
            report=report,
            backward=backward,
        )

    def every_row(self) -> torch.Tensor:
        return torch.arange(self.latents.shape[0], device=self.latents.device)


def split_step(inputs: _StepInputs) -> GuidedStep:
    """The unconditional forward without grad, then the conditional one with grad: the least
    arithmetic, and the unconditional activations are freed before the graph is recorded."""
    noise_uncond = inputs.unconditional() if inputs.negative_embeds is not None else None
    rows = inputs.every_row()
    guided_latents, noise, _, levels, copies = inputs.graph_forward(rows)
    return inputs.finish(levels, copies, guided_latents, rows, noise.detach().to(inputs.latents.dtype), noise_uncond)


def joint_step(inputs: _StepInputs) -> GuidedStep:
    """Both CFG halves as one batch with grad, the unconditional half a constant: one pass fewer."""
    if inputs.negative_embeds is None:
        return split_step(inputs)
    rows = inputs.every_row()
    guided_latents, noise, noise_uncond, levels, copies = inputs.graph_forward(rows, joint=True)
    return inputs.finish(levels, copies, guided_latents, rows, noise.detach().to(inputs.latents.dtype), noise_uncond)


def concurrent_step(inputs: _StepInputs) -> GuidedStep:
    """The split step with its unconditional forward in a second thread beside the conditional one
    (on a CPU with two or more threads; the split step elsewhere)."""
    with ThreadSharing() as sharing:
        if inputs.negative_embeds is None or not sharing.possible(inputs.latents.device):
            return split_step(inputs)
        pending_uncond = sharing.start(inputs.unconditional)
        rows = inputs.every_row()
        guided_latents, noise, _, levels, copies = inputs.graph_forward(rows)
        noise_uncond = pending_uncond()  # joined before the backward, which gets every thread again
        return inputs.finish(
            levels, copies, guided_latents, rows, noise.detach().to(inputs.latents.dtype), noise_uncond
        )


def measured_step(inputs: _StepInputs) -> GuidedStep:
    """One forward of the CFG batch without grad measures every image; only the images whose
    relations do not all hold with margin get the conditional forward with grad and the backward.
    The others' gradient stays zero (a settled image gets no update anyway): the same images, at
    less cost when most of the batch is settled."""
    batch = inputs.latents.shape[0]
    with inputs.store.capturing(), torch.no_grad():
        noise_uncond, noise_text = unconditional_and_conditional(
            inputs.unet,
            inputs.scheduler,
            inputs.latents,
            inputs.t,
            inputs.prompt_embeds,
            inputs.negative_embeds,
            inputs.added_cond,
            inputs.negative_added_cond,
        )
    levels = object_maps(inputs.store, inputs.token_matrix, conditional_rows=batch)
    copies = object_second_copies(inputs.store, levels, conditional_rows=batch)
    rows = (~inputs.objective.evaluate(statistics(levels), inputs.weights).settled).nonzero().flatten()
    guided_latents = None
    if rows.numel():
        guided_latents, _, _, graph_maps, graph_copies = inputs.graph_forward(rows)
        levels = {h: maps.index_copy(0, rows, graph_maps[h]) for h, maps in levels.items()}
        copies = None if copies is None else copies.index_copy(0, rows, graph_copies)
    return inputs.finish(levels, copies, guided_latents, rows, noise_text, noise_uncond)


STEP_BY_MODE: dict[str, Callable[[_StepInputs], GuidedStep]] = {
    "split": split_step,
    "joint": joint_step,
    "concurrent": concurrent_step,
}


def guided_step(
    unet,
    scheduler,
    latents,
    t,
    prompt_embeds,
    store,
    token_matrix,
    objective,
    weights,
    *,
    negative_embeds=None,
    measure_first: bool = False,
    precision: str = "model",
    combination: Combination = "sum",
    cfg_forward: CfgForward = "split",
    added_cond: dict[str, torch.Tensor] | None = None,
    negative_added_cond: dict[str, torch.Tensor] | None = None,
) -> GuidedStep:
    """The model passes of one guided step, the objective on every image, and its gradient.

    `cfg_forward` picks how the two CFG halves run (`split_step`, `joint_step`,
    `concurrent_step`: the same numbers each way); `measure_first` runs `measured_step` instead.
    The relations' gradients are taken with respect to the objects' centroids and variances (a
    few numbers each), combined there (`conflicts.combine`), and pushed through the UNet with one
    vector-Jacobian product. latents [B,C,h,w]; token_matrix [B,K,T] averages the captured token
    columns into object maps. precision "bfloat16" runs the graph-recording forward and the
    backward under bfloat16 autocast (the loss stays float32)."""
    inputs = _StepInputs(
        unet,
        scheduler,
        latents,
        t,
        prompt_embeds,
        negative_embeds,
        store,
        token_matrix,
        objective,
        weights,
        precision,
        combination,
        added_cond,
        negative_added_cond,
    )
    with torch.enable_grad():
        return measured_step(inputs) if measure_first else STEP_BY_MODE[cfg_forward](inputs)


def unconditional_and_conditional(
    unet, scheduler, latents, t, prompt_embeds, negative_embeds, added_cond=None, negative_added_cond=None
):
    """Both noise predictions from one forward of the CFG batch (the unconditional one is None without CFG)."""
    cfg = negative_embeds is not None
    model_input = scheduler.scale_model_input(torch.cat([latents] * 2) if cfg else latents, t)
    embeds = torch.cat([negative_embeds, prompt_embeds]) if cfg else prompt_embeds
    added = joined(negative_added_cond, added_cond) if cfg else added_cond
    noise = unet(model_input, t, encoder_hidden_states=embeds, added_cond_kwargs=added, return_dict=False)[0]
    return noise.chunk(2) if cfg else (None, noise)


def joined(first: dict | None, second: dict | None) -> dict | None:
    """Two batches of added conditions (SDXL's) as one: each tensor concatenated along the batch."""
    if first is None or second is None:
        return second if first is None else first
    return {key: torch.cat([first[key], second[key]]) for key in second}


def picked(added: dict | None, rows: torch.Tensor) -> dict | None:
    """The added conditions of some rows of the batch."""
    return None if added is None else {key: value[rows] for key, value in added.items()}


@contextmanager
def frozen_weights(module: torch.nn.Module) -> Iterator[None]:
    """Weights need no gradient during guidance: the backward then computes only d/d(latents)."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for parameter, _ in flags:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in flags:
            parameter.requires_grad_(flag)


def per_image(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """values [B] viewed as [B, 1, ..., 1] to broadcast over `like` [B, ...]."""
    return values.view(-1, *([1] * (like.dim() - 1)))


def finite_rows(step: GuidedStep) -> torch.Tensor:
    """[B] whether an image's loss and gradient are finite."""
    return torch.isfinite(step.value.total) & torch.isfinite(step.grad).flatten(1).all(dim=1)


def classifier_free(
    noise_uncond: torch.Tensor | None, noise_text: torch.Tensor, sampling: SamplingDefaults
) -> torch.Tensor:
    """eps_u + s (eps_c - eps_u), rescaled as diffusers does when `guidance_rescale` > 0."""
    if noise_uncond is None:
        return noise_text
    guided = noise_uncond + sampling.guidance_scale * (noise_text - noise_uncond)
    if sampling.guidance_rescale > 0:
        from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import rescale_noise_cfg

        guided = rescale_noise_cfg(guided, noise_text, guidance_rescale=sampling.guidance_rescale)
    return guided
