"""Opt-in (pytest -m slow): the SD 1.4 UNet *configuration* (random weights) at a small latent size."""

import pytest
import torch

from infsplign_scene.guidance import GuidanceConfig, ScenePipeline
from infsplign_scene.lab.testing import SD14_UNET_CONFIG, TINY_VAE_CONFIG, assemble_pipeline


@pytest.mark.slow
def test_two_guided_steps_on_the_sd14_unet_configuration():
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from infsplign_scene.lab.shapes.model import build_tokenizer

    torch.manual_seed(0)
    tokenizer = build_tokenizer()
    unet = UNet2DConditionModel(**SD14_UNET_CONFIG)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=768,
            intermediate_size=1024,
            num_hidden_layers=1,
            num_attention_heads=12,
            max_position_embeddings=77,
            eos_token_id=tokenizer.eos_token_id,
        )
    )
    vae = AutoencoderKL(**TINY_VAE_CONFIG)
    scheduler = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, steps_offset=1)
    pipe = assemble_pipeline(vae, text_encoder, tokenizer, unet, scheduler)
    result = ScenePipeline(pipe, GuidanceConfig())(
        "a red circle to the left of a blue square",
        seed=0,
        num_inference_steps=2,
        height=128,
        width=128,
        progress=False,
    )
    assert result.images[0].size == (128, 128)
    assert all("loss" in step for step in result.trace)
    assert set(result.trace[0]["centroids"]) == {"4", "8"}  # up_blocks.1 (coarse) and up_blocks.2 (middle)
    assert all(norm > 0 for step in result.trace for norm in step["grad_norm"])


@pytest.mark.slow
def test_guided_step_benchmark_runs_and_reports_its_ratios(tmp_path):
    """The benchmark script end to end at a small latent: every timed variant and ratio lands in the JSON."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "guided_step.py"
    variants = ",".join(
        ("plain", "unconditional_forward", "guided_parts", "guided", "guided_split", "reference", "guided_r32")
        + ("plain_native_conv", "guided_native_conv")
    )
    out = tmp_path / "perf.json"
    command = [sys.executable, str(script), "--latent", "8", "--repeats", "1", "--time-only", variants]
    command += ["--json", str(out)]
    subprocess.run(command, check=True, capture_output=True)
    results = json.loads(out.read_text())
    timed = set(variants.split(",")) - {"guided_parts"} | {"conditional_forward", "backward"}
    assert set(results["median_seconds"]) == timed
    assert all(len(results["seconds"][name]) == 1 for name in timed)
    # a guided step runs two forwards and a backward where the plain step runs one batch-2 forward
    assert results["guided_over_plain"] > 1.0
    assert results["reference_over_guided"] > 0 and results["r32_over_r1_time"] > 0
    assert results["machine"]["cfg_forward"] == "concurrent" and results["guided_split_over_guided"] > 0
    assert results["machine"]["allocator"].startswith(("glibc", "system"))
    # one repeat: the per-round ratio is the ratio of that round's two timings
    seconds = results["seconds"]
    assert results["paired"]["guided_over_plain"] == seconds["guided"][0] / seconds["plain"][0]
