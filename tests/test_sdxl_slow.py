"""Opt-in (pytest -m slow): the SDXL UNet *configuration* (2.6 billion random weights, about 10 GB
in float32) at a small latent size, through the pipeline and through the benchmark script."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from infsplign_scene.guidance import ScenePipeline
from infsplign_scene.lab.testing import SDXL_UNET_CONFIG, TINY_VAE_CONFIG


@pytest.mark.slow
def test_two_guided_steps_on_the_sdxl_unet_configuration(clip_tokenizer):
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)

    def text_config(width: int) -> CLIPTextConfig:  # one layer: the UNet is what is being tested
        return CLIPTextConfig(
            vocab_size=len(clip_tokenizer),
            hidden_size=width,
            intermediate_size=width,
            num_hidden_layers=1,
            num_attention_heads=8,
            projection_dim=1280,
            bos_token_id=clip_tokenizer.bos_token_id,
            eos_token_id=clip_tokenizer.eos_token_id,
            pad_token_id=clip_tokenizer.pad_token_id,
        )

    vae = AutoencoderKL(**TINY_VAE_CONFIG)
    pipe = StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=CLIPTextModel(text_config(768)),  # 768 + 1280: the UNet's 2048-wide cross-attention
        tokenizer=clip_tokenizer,
        text_encoder_2=CLIPTextModelWithProjection(text_config(1280)),
        tokenizer_2=clip_tokenizer,
        unet=UNet2DConditionModel(**SDXL_UNET_CONFIG),
        scheduler=EulerDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012),
    )
    prompt = "a red circle to the left of a blue square"
    result = ScenePipeline(pipe)(prompt, seed=0, num_inference_steps=2, height=128, width=128, progress=False)
    assert result.images[0].size == (128, 128)
    # up_blocks.0 (coarse, 10 transformer blocks per attention) at a quarter of the latent, up_blocks.1 at half
    assert set(result.trace[0]["centroids"]) == {"4", "8"}
    assert all(norm > 0 for step in result.trace for norm in step["grad_norm"])


@pytest.mark.slow
def test_guided_step_benchmark_runs_on_the_sdxl_configuration(tmp_path):
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "guided_step.py"
    variants = "plain,guided,guided_authors_layers,reference,guided_r32"
    out = tmp_path / "perf.json"
    command = [sys.executable, str(script), "--family", "sdxl", "--latent", "8", "--repeats", "1"]
    subprocess.run([*command, "--time-only", variants, "--json", str(out)], check=True, capture_output=True)
    results = json.loads(out.read_text())
    assert results["machine"]["family"] == "sdxl"
    assert set(results["median_seconds"]) == set(variants.split(","))
    assert results["guided_over_plain"] > 1.0 and results["guided_over_guided_authors_layers"] > 0
