"""One guided denoising step: the model passes, the objective on every image and its gradient.

`guided_step` is what `ScenePipeline` runs at each guided step (and what the benchmark times);
`cuda_graphs.CapturedGuidedStep` records it once and replays it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar

import torch

from .compile import ObjectiveValue, statistics
from .config import CfgForward, Combination
from .conflicts import ConflictReport, combine, relation_gradients


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
) -> GuidedStep:
    """The model passes of one guided step, the objective on every image, and its gradient.

    By default the conditional forward runs with grad on the latents for every image and the
    unconditional one (`negative_embeds`, if given) without. With `measure_first`, one forward
    without grad (the CFG batch) measures every image first, and only the images whose relations
    do not all hold with margin get the conditional forward with grad and the backward; the
    others' gradient is left at zero (a settled image gets no update anyway), so images come out
    the same, at less cost when most of the batch is settled. The relations' gradients are taken
    with respect to the objects' centroids and variances (a few numbers each), combined there
    (`conflicts.combine`), and pushed through the UNet with one vector-Jacobian product.
    latents [B,C,h,w]; token_matrix [B,K,T] averages the captured token columns into object maps.
    precision "bfloat16" runs the graph-recording forward and the backward under bfloat16
    autocast (the loss stays float32). `cfg_forward` (without `measure_first`) says how the
    unconditional forward runs: "split", before the graph-recording one; "joint", riding along in
    it as a constant (one pass fewer); "concurrent", on CPU with two or more threads, beside it
    in a second thread. The same numbers each way."""
    batch = latents.shape[0]
    noise_uncond = None
    graph_rows = torch.arange(batch, device=latents.device)
    with torch.enable_grad(), _ThreadSharing() as sharing:
        if measure_first:
            with store.capturing(), torch.no_grad():
                noise_uncond, noise_text = unconditional_and_conditional(
                    unet, scheduler, latents, t, prompt_embeds, negative_embeds
                )
            measured = object_maps(store, token_matrix, conditional_rows=batch)
            graph_rows = (~objective.evaluate(statistics(measured), weights).settled).nonzero().flatten()
        unconditional_pending = negative_embeds is not None and not measure_first
        joint = cfg_forward == "joint" and unconditional_pending
        pending_uncond: Callable[[], torch.Tensor] | None = None
        if unconditional_pending and not joint:
            unconditional_input = scheduler.scale_model_input(latents, t)

            def unconditional_forward() -> torch.Tensor:
                with torch.no_grad():
                    return unet(unconditional_input, t, encoder_hidden_states=negative_embeds).sample

            if cfg_forward == "concurrent" and sharing.possible(latents.device):
                pending_uncond = sharing.start(unconditional_forward)
            else:  # before the graph is recorded, so that its activations never sit beside the graph's
                noise_uncond = unconditional_forward()
        if graph_rows.numel():
            guided_latents = latents[graph_rows].detach().requires_grad_(True)
            # no cast cache: each weight is cast once per pass anyway, and a CUDA graph cannot record one
            autocast = torch.autocast(
                latents.device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16", cache_enabled=False
            )
            with store.capturing(), autocast:
                if joint:  # not measure_first, so graph_rows holds every image
                    model_input = scheduler.scale_model_input(torch.cat([latents.detach(), guided_latents]), t)
                    embeds = torch.cat([negative_embeds, prompt_embeds])
                    noise_uncond, noise_graph = unet(model_input, t, encoder_hidden_states=embeds).sample.chunk(2)
                    noise_uncond = noise_uncond.detach().to(latents.dtype)
                else:
                    model_input = scheduler.scale_model_input(guided_latents, t)
                    noise_graph = unet(model_input, t, encoder_hidden_states=prompt_embeds[graph_rows]).sample
            graph_maps = object_maps(store, token_matrix[graph_rows], conditional_rows=batch if joint else None)
        if pending_uncond is not None:  # joined before the backward, which gets every thread again
            noise_uncond = pending_uncond()
        store.reset()
        if measure_first:
            levels = measured
            if graph_rows.numel():
                levels = {h: maps.index_copy(0, graph_rows, graph_maps[h]) for h, maps in measured.items()}
        else:
            levels, noise_text = graph_maps, noise_graph.detach().to(latents.dtype)
        stats = statistics(levels)
        leaves = {h: (c.detach().requires_grad_(True), v.detach().requires_grad_(True)) for h, (c, v) in stats.items()}
        value = objective.evaluate(leaves, weights)
        flat_leaves = [x for pair in leaves.values() for x in pair]
        per_relation = relation_gradients(value.relation_loss, flat_leaves)  # [B, R, D]
        combined, report = combine(per_relation, objective.weight.to(per_relation.device), combination)
        grad = torch.zeros_like(latents, dtype=torch.float32)
        if graph_rows.numel():
            sizes = [leaf[0].numel() for leaf in flat_leaves]
            grad_outputs = [
                g.reshape(leaf.shape) for g, leaf in zip(combined.split(sizes, dim=1), flat_leaves, strict=True)
            ]
            outputs = [x for pair in stats.values() for x in pair]
            grad[graph_rows] = torch.autograd.grad(outputs, guided_latents, grad_outputs=grad_outputs)[0].float()
    value.total, value.relation_loss = value.total.detach(), value.relation_loss.detach()
    # index_fill_, not `backward[graph_rows] = True`, whose value travels from host memory
    backward = torch.zeros(batch, dtype=torch.bool, device=latents.device).index_fill_(0, graph_rows, True)
    return GuidedStep(
        value=value,
        grad=grad,
        noise_text=noise_text,
        noise_uncond=noise_uncond,
        levels={h: m.detach() for h, m in levels.items()},
        report=report,
        backward=backward,
    )


class _ThreadSharing:
    """Runs one piece of work in a second thread while the caller goes on, torch's CPU threads shared
    out between the two; on exit (also on error) the work is waited for and the count restored.

    Two batch-1 passes side by side keep the cores busier than one after the other: a small pass
    splits too little work to use every thread well (SD 1.4 at latent 32 on 2 cores: a batch-1
    forward takes 0.56 of its 1-thread time with 2 threads)."""

    _worker: ClassVar[ThreadPoolExecutor | None] = None  # one lasting thread: its kernel caches outlive a step

    def __enter__(self) -> _ThreadSharing:
        self.threads = torch.get_num_threads()
        self.pending: Future | None = None
        return self

    def possible(self, device: torch.device) -> bool:
        return device.type == "cpu" and self.threads >= 2

    def start(self, work: Callable[[], torch.Tensor]) -> Callable[[], torch.Tensor]:
        """Start `work` in the second thread; returns the function that waits for its result (or error)."""
        worker_threads = self.threads // 2

        def run() -> torch.Tensor:
            if torch.get_num_threads() != worker_threads:  # per thread; setting it also empties oneDNN's cache
                torch.set_num_threads(worker_threads)
            return work()

        if _ThreadSharing._worker is None:
            _ThreadSharing._worker = ThreadPoolExecutor(1, thread_name_prefix="infsplign-unconditional")
        torch.set_num_threads(self.threads - worker_threads)
        self.pending = _ThreadSharing._worker.submit(run)
        return self._result

    def _settle(self) -> Future:
        """Wait for the work and give the caller every thread again; returns the finished future."""
        finished, self.pending = self.pending, None
        wait([finished])
        torch.set_num_threads(self.threads)
        return finished

    def _result(self) -> torch.Tensor:
        return self._settle().result()

    def __exit__(self, *exc_info) -> None:
        if self.pending is not None:  # the caller failed first: the work finishes before threads are restored
            self._settle()


def unconditional_and_conditional(unet, scheduler, latents, t, prompt_embeds, negative_embeds):
    """Both noise predictions from one forward of the CFG batch (the unconditional one is None without CFG)."""
    cfg = negative_embeds is not None
    model_input = scheduler.scale_model_input(torch.cat([latents] * 2) if cfg else latents, t)
    embeds = torch.cat([negative_embeds, prompt_embeds]) if cfg else prompt_embeds
    noise = unet(model_input, t, encoder_hidden_states=embeds, return_dict=False)[0]
    return noise.chunk(2) if cfg else (None, noise)


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
