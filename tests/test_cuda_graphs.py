"""Guided steps replayed from a CUDA graph (`GuidanceConfig.cuda_graph`).

The replay tests need a CUDA device and skip without one (CI has none); they were run on a lent
GPU (docs/performance.md, "CUDA graphs in the pipeline")."""

from __future__ import annotations

import pytest
import torch
from conftest import build_tiny_pipeline
from diffusers import EulerDiscreteScheduler

from infsplign_scene.errors import InfsplignError
from infsplign_scene.guidance import GuidanceConfig, ScenePipeline

PROMPT = "a red circle left of a blue square"
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")


def test_cuda_graph_on_a_cpu_pipeline_is_a_clear_error(tiny_pipe):
    scene = ScenePipeline(tiny_pipe, GuidanceConfig(eta=5.0, cuda_graph=True))
    with pytest.raises(InfsplignError, match=r"cuda_graph=True .* on cpu"):
        scene(PROMPT, seed=0, num_inference_steps=1, progress=False)


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


def sample(pipe, **config):
    steps = 6
    return ScenePipeline(pipe, GuidanceConfig(eta=20.0, **config))(
        PROMPT, seed=0, num_inference_steps=steps, output_type="latent", progress=False
    )


@needs_cuda
@pytest.mark.parametrize(
    "options",
    [{}, {"cfg_forward": "joint"}, {"guidance_precision": "bfloat16"}, {"skip_satisfied": True, "margin": 0.0}],
    ids=["split", "joint", "bfloat16", "skip_satisfied"],
)
def test_replayed_steps_give_the_eager_images_and_losses(cuda_pipe, options):
    eager = sample(cuda_pipe, **options)
    replayed = sample(cuda_pipe, cuda_graph=True, **options)
    unguided = ScenePipeline(cuda_pipe, GuidanceConfig(eta=0.0))(
        PROMPT, seed=0, num_inference_steps=6, output_type="latent", progress=False
    )
    assert not torch.allclose(eager.images, unguided.images, atol=1e-3)  # the guidance did move the latents
    torch.testing.assert_close(replayed.images, eager.images, rtol=1e-4, atol=1e-4)
    for ours, theirs in zip(replayed.trace, eager.trace, strict=True):
        assert ours["satisfied"] == theirs["satisfied"]
        torch.testing.assert_close(torch.tensor(ours["loss"]), torch.tensor(theirs["loss"]), rtol=1e-4, atol=1e-5)


@needs_cuda
def test_after_recording_no_step_runs_python(cuda_pipe):
    """Every UNet call from Python is a warm-up or the recording; the 6 guided steps are replays."""
    calls = []
    hook = cuda_pipe.unet.register_forward_pre_hook(lambda module, args: calls.append(1))
    try:
        sample(cuda_pipe, cuda_graph=True)
    finally:
        hook.remove()
    warmups, passes_per_step = 2, 2  # split CFG: unconditional and conditional forward
    assert len(calls) == (warmups + 1) * passes_per_step  # 12 when the steps run eagerly
