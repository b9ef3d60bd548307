"""Opt-in (pytest -m slow): the SD 1.4 UNet *configuration* (random weights) at a small latent size."""

import pytest
import torch

from infsplign_scene.guidance import GuidanceConfig, ScenePipeline
from infsplign_scene.testing import SD14_UNET_CONFIG, assemble_pipeline


@pytest.mark.slow
def test_two_guided_steps_on_the_sd14_unet_configuration():
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from infsplign_scene.shapes.model import build_tokenizer

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
    vae = AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
    )
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
