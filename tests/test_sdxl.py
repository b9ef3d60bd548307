"""SDXL: a tiny StableDiffusionXLPipeline built from config (random weights), as diffusers' tests do."""

import numpy as np
import pytest
import torch

from infsplign_scene import InfsplignError, ScenePipeline
from infsplign_scene.families import SDXL, family_of

PROMPT = "a red circle to the left of a blue square"


@pytest.fixture(scope="module")
def tiny_sdxl(clip_tokenizer):
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=16,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=80,  # 6 time ids x 8 + the pooled text embedding's 32
        cross_attention_dim=64,
        norm_num_groups=16,
    )
    text = CLIPTextConfig(
        vocab_size=len(clip_tokenizer),
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        projection_dim=32,
        bos_token_id=clip_tokenizer.bos_token_id,
        eos_token_id=clip_tokenizer.eos_token_id,
        pad_token_id=clip_tokenizer.pad_token_id,
    )
    vae = AutoencoderKL(
        block_out_channels=(16, 32),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        norm_num_groups=8,
        sample_size=32,
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", timestep_spacing="leading", steps_offset=1
    )
    pipe = StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=CLIPTextModel(text),
        tokenizer=clip_tokenizer,
        text_encoder_2=CLIPTextModelWithProjection(text),
        tokenizer_2=clip_tokenizer,
        unet=unet,
        scheduler=scheduler,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_the_family_is_recognised_from_the_components(tiny_sdxl, tiny_pipe):
    assert family_of(tiny_sdxl) == SDXL
    preset = ScenePipeline(tiny_sdxl).preset
    assert (preset.family, preset.guidance.margin, preset.sampling.guidance_scale) == (SDXL, 0.5, 5.0)

    class Kandinsky:
        unet = None

    with pytest.raises(InfsplignError, match="Kandinsky is not a supported pipeline.*StableDiffusionXLPipeline"):
        ScenePipeline(Kandinsky())


@pytest.mark.parametrize("guided", [False, True])
def test_no_guidance_gives_the_plain_sdxl_pipelines_image(tiny_sdxl, guided):
    """eta 0 (or guidance with no relation) is the diffusers loop: the same latents for a seed."""
    scene = ScenePipeline(tiny_sdxl, ScenePipeline(tiny_sdxl).config.updated(eta=100.0 if guided else 0.0))
    prompt = "a red circle and a blue square" if guided else PROMPT  # no relation: nothing to guide
    ours = scene(prompt, seed=3, num_inference_steps=3, output_type="latent", progress=False).images
    plain = tiny_sdxl(
        prompt,
        num_inference_steps=3,
        guidance_scale=5.0,
        generator=torch.Generator().manual_seed(3),
        output_type="latent",
    ).images
    torch.testing.assert_close(ours, plain, atol=1e-5, rtol=1e-4)


def test_guidance_moves_the_sdxl_latents_and_reports_each_relation(tiny_sdxl):
    scene = ScenePipeline(tiny_sdxl, ScenePipeline(tiny_sdxl).config.updated(eta=100.0))
    guided = scene(PROMPT, seed=3, num_inference_steps=3, output_type="latent", progress=False)
    unguided = scene(
        PROMPT,
        seed=3,
        num_inference_steps=3,
        output_type="latent",
        progress=False,
        config=scene.config.updated(eta=0.0),
    )
    assert not torch.allclose(guided.images, unguided.images)
    step = guided.trace[0]
    assert step["grad_norm"][0] > 0 and len(step["satisfied"][0]) == 1
    assert set(step["centroids"]) == {"8", "16"}  # the two decoder levels with cross-attention


def test_a_prompt_past_the_token_window_names_the_object(tiny_sdxl):
    from infsplign_scene import TokenSpanError

    long = (
        "a red circle to the left of a blue square, "
        + ", ".join(["a tiny green triangle above a small yellow star"] * 12)
        + ", a cat near the red circle"
    )
    with pytest.raises(TokenSpanError, match="cat"):
        ScenePipeline(tiny_sdxl)(long, seed=0, num_inference_steps=1, progress=False)


def test_an_sdxl_folder_loads_as_sdxl(tiny_sdxl, tmp_path):
    tiny_sdxl.save_pretrained(tmp_path / "sdxl")
    loaded = ScenePipeline.from_pretrained(tmp_path / "sdxl")
    assert family_of(loaded.pipe) == SDXL and loaded.preset.family == SDXL
    assert loaded(PROMPT, seed=0, num_inference_steps=1, progress=False).images[0].size == (32, 32)


@pytest.mark.parametrize("predicate", ["left_of", "right_of", "above", "below", "near"])
def test_one_gradient_step_lowers_the_objective_for_every_predicate_through_the_sdxl_unet(tiny_sdxl, predicate):
    from conftest import objective_for

    from infsplign_scene.attention import trace
    from infsplign_scene.families import encode
    from infsplign_scene.relations import TABLE
    from infsplign_scene.step import guided_step
    from infsplign_scene.tokens import object_token_matrix

    prompt = f"a red circle {TABLE[predicate].phrase} a blue square"
    scene = ScenePipeline(tiny_sdxl, ScenePipeline(tiny_sdxl).config.updated(eta=1.0, margin=0.6, near_margin=0.01))
    objective = objective_for(prompt)
    matrix, columns = object_token_matrix(tiny_sdxl.tokenizer, objective, False, "cpu")
    text = encode(tiny_sdxl, [prompt], torch.device("cpu"), False, None, (32, 32))
    tiny_sdxl.scheduler.set_timesteps(10)
    t = tiny_sdxl.scheduler.timesteps[2]
    latents = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    with trace(tiny_sdxl.unet, (16, 16), columns, levels=2) as store:

        def objective_at(x):
            return guided_step(
                tiny_sdxl.unet,
                tiny_sdxl.scheduler,
                x,
                t,
                text.prompt_embeds,
                store,
                matrix,
                objective,
                scene.config,
                added_cond=text.added,
            )

        step = objective_at(latents)
        move = 0.05 * step.grad / step.grad.norm()
        lower, higher = objective_at(latents - move).value, objective_at(latents + move).value
    assert lower.total.item() < step.value.total.item() < higher.total.item()


def test_guidance_rescale_is_diffusers_rescale(tiny_sdxl):
    scene = ScenePipeline(tiny_sdxl, ScenePipeline(tiny_sdxl).config.updated(eta=0.0))
    ours = scene(PROMPT, seed=4, num_inference_steps=3, guidance_rescale=0.7, output_type="latent", progress=False)
    plain = tiny_sdxl(
        PROMPT,
        num_inference_steps=3,
        guidance_scale=5.0,
        guidance_rescale=0.7,
        generator=torch.Generator().manual_seed(4),
        output_type="latent",
    ).images
    unrescaled = scene(PROMPT, seed=4, num_inference_steps=3, output_type="latent", progress=False).images
    torch.testing.assert_close(ours.images, plain, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(unrescaled, plain)


def test_a_float16_vae_decodes_in_float32_as_the_sdxl_pipeline_does(tiny_sdxl):
    """SDXL's VAE overflows in float16: with `force_upcast` it decodes in float32, then goes back."""
    assert tiny_sdxl.vae.config.force_upcast
    tiny_sdxl.vae.to(torch.float16)
    try:
        scene = ScenePipeline(tiny_sdxl, ScenePipeline(tiny_sdxl).config.updated(eta=0.0))
        ours = scene(PROMPT, seed=3, num_inference_steps=2, output_type="np", progress=False).images
        plain = tiny_sdxl(
            PROMPT,
            num_inference_steps=2,
            guidance_scale=5.0,
            generator=torch.Generator().manual_seed(3),
            output_type="np",
        ).images
        assert tiny_sdxl.vae.dtype == torch.float16
    finally:
        tiny_sdxl.vae.to(torch.float32)
    np.testing.assert_allclose(ours, plain, atol=1e-5)
