"""Guided steps replayed from a CUDA graph (`GuidanceConfig.cuda_graph`).

The replay tests need a CUDA device and skip without one (CI has none); they were run on a lent
GPU (docs/performance.md, "CUDA graphs": 15 passed on an H200)."""

from __future__ import annotations

import pytest
import torch
from conftest import build_tiny_pipeline, objective_for
from diffusers import EulerDiscreteScheduler

from infsplign_scene.attention import no_graph_after, trace
from infsplign_scene.cuda_graphs import CapturedGuidedStep
from infsplign_scene.errors import InfsplignError
from infsplign_scene.guidance import GuidanceConfig, ScenePipeline
from infsplign_scene.step import frozen_weights, guided_step
from infsplign_scene.tokens import object_token_matrix

PROMPT = "a red circle left of a blue square"
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")


def test_cuda_graph_on_a_cpu_pipeline_is_a_clear_error(tiny_pipe):
    scene = ScenePipeline(tiny_pipe, GuidanceConfig(eta=5.0, cuda_graph=True))
    with pytest.raises(InfsplignError, match=r"cuda_graph=True .* on cpu"):
        scene(PROMPT, seed=0, num_inference_steps=1, progress=False)


def test_recording_a_step_on_cpu_latents_is_a_clear_error(tiny_pipe):
    latents, embeds = torch.zeros(1, 4, 8, 8), torch.zeros(1, 77, 32)
    objective = objective_for(PROMPT)
    with pytest.raises(ValueError, match="CUDA device, not cpu"):
        CapturedGuidedStep(tiny_pipe.unet, tiny_pipe.scheduler, latents, 1, embeds, None, None, objective, None)


@pytest.fixture(scope="module", params=["ddim", "euler"])
def cuda_pipe(request):
    """The tiny pipeline on CUDA, with DDIM (no input scaling) or Euler (input scaled per step)."""
    if not torch.cuda.is_available():
        pytest.skip("CUDA graphs need a CUDA device")
    pipe = build_tiny_pipeline()
    if request.param == "euler":
        pipe = type(pipe)(**{**pipe.components, "scheduler": EulerDiscreteScheduler.from_config(pipe.scheduler.config)})
        pipe.set_progress_bar_config(disable=True)
    return pipe.to("cuda")


def relative_error(ours: torch.Tensor, reference: torch.Tensor) -> float:
    return ((ours - reference).abs().max() / reference.abs().max().clamp_min(1e-12)).item()


@needs_cuda
@pytest.mark.parametrize("cfg_forward", ["split", "joint"])
def test_a_replay_gives_the_eager_step_at_new_latents_and_timesteps(cuda_pipe, cfg_forward):
    """Recorded at one step, replayed at others: latents, timestep and the scheduler's input scale
    are read afresh at each replay. The recorded kernels add in another order than the eager ones
    (on an H200 a replay on its recording's inputs differed from the eager step by 4.7e-4 of the
    gradient's size); a replay on stale inputs would differ as much as two different steps do,
    which the test checks to be far more."""
    pipe, device = cuda_pipe, torch.device("cuda")
    scene = ScenePipeline(pipe, GuidanceConfig(eta=1.0))
    objective = objective_for([PROMPT]).to(device)
    token_matrix, columns = object_token_matrix(
        scene.pipe.tokenizer, objective, scene.config.include_attributes, scene.device
    )
    embeds, negative = pipe.encode_prompt([PROMPT], device, 1, True)
    generator = torch.Generator(device).manual_seed(0)
    latents = [torch.randn(1, 4, 8, 8, generator=generator, device=device) for _ in range(3)]
    with trace(pipe.unet, (8, 8), columns, levels=2) as store, frozen_weights(pipe.unet), no_graph_after(pipe.unet):
        arguments = dict(
            prompt_embeds=embeds,
            store=store,
            token_matrix=token_matrix,
            objective=objective,
            weights=scene.config,
            negative_embeds=negative,
            cfg_forward=cfg_forward,
        )
        captured, previous = None, None
        for x, index in zip(latents, (1, 4, 7), strict=True):
            pipe.scheduler.set_timesteps(10, device=device)  # Euler finds its step index from t afresh
            t = pipe.scheduler.timesteps[index]
            if captured is None:  # recorded at the first of the three steps
                captured = CapturedGuidedStep(pipe.unet, pipe.scheduler, x, t, **arguments)
            replay = captured(x, t)
            eager = guided_step(pipe.unet, pipe.scheduler, x, t, **arguments)
            assert eager.grad.abs().sum() > 0
            for name in ("grad", "noise_text", "noise_uncond"):
                assert relative_error(getattr(replay, name), getattr(eager, name)) < 5e-3, (name, index)
                if previous is not None:  # what a stale input would give
                    assert relative_error(getattr(replay, name), getattr(previous, name)) > 0.1, (name, index)
            assert relative_error(replay.value.relation_loss, eager.value.relation_loss) < 5e-3
            previous = eager


def sample(pipe, scenes=PROMPT, steps=4, **config):
    return ScenePipeline(pipe, GuidanceConfig(**{"eta": 300.0, **config}))(
        scenes, seed=0, num_inference_steps=steps, output_type="latent", progress=False
    )


@needs_cuda
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"cfg_forward": "joint"},
        {"guidance_precision": "bfloat16"},
        # the "near" image is settled at once (within 1.5), so steps after the first measure first, eagerly
        {"skip_satisfied": True, "near_margin": 1.5, "scenes": ["a red circle near a blue square", PROMPT]},
    ],
    ids=["split", "joint", "bfloat16", "skip_satisfied"],
)
def test_replayed_sampling_follows_the_eager_one(cuda_pipe, options):
    """Four guided steps. The recorded kernels add in another order than the eager ones, and the
    rounding differences grow through the steps, while guidance moves the latents far more."""
    eager = sample(cuda_pipe, **options)
    replayed = sample(cuda_pipe, cuda_graph=True, **options)
    unguided = sample(cuda_pipe, **{**options, "eta": 0.0})
    moved = (eager.images - unguided.images).abs().max().item()
    assert moved > 0.1
    assert (replayed.images - eager.images).abs().max().item() < 0.05 * moved
    assert [r.get("backward") for r in replayed.trace] == [r.get("backward") for r in eager.trace]


@needs_cuda
def test_after_recording_no_step_runs_python(cuda_pipe):
    """Every UNet call from Python is a warm-up or the recording; the 8 guided steps are replays."""
    calls = []
    hook = cuda_pipe.unet.register_forward_pre_hook(lambda module, args: calls.append(1))
    try:
        sample(cuda_pipe, steps=8, cuda_graph=True)
    finally:
        hook.remove()
    warmups, passes_per_step = 2, 2  # split CFG: unconditional and conditional forward
    assert len(calls) == (warmups + 1) * passes_per_step  # 16 when the steps run eagerly
