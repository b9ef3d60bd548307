"""Attention capture (`infsplign_scene.attention`): the model's output is untouched, and the maps
and their gradient stay in float32 whatever the model's dtype."""

from __future__ import annotations

import copy
import threading
import warnings

import numpy as np
import pytest
import torch
from conftest import objective_for
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

from infsplign_scene.attention import no_graph_after, trace
from infsplign_scene.guidance import ScenePipeline
from infsplign_scene.lab.shapes.model import WEIGHTS_DIR
from infsplign_scene.parsing import load_scene
from infsplign_scene.step import frozen_weights, guided_step
from infsplign_scene.tokens import object_token_matrix


def embedded_model_gradient(dtype: torch.dtype) -> torch.Tensor:
    """The guided step's gradient [2, 4, h, w] (float32) of the embedded model in `dtype`, at the
    first of 20 steps, for two images whose maps of one object hold almost no mass (seeds 13 and
    14 of a batch that alternates the two scenes)."""
    scene = ScenePipeline.from_pretrained("shapes").to(dtype=dtype)
    pipe = scene.pipe
    texts = ["a green triangle above a yellow circle", "a red circle left of a blue square"]
    objective = objective_for([load_scene(text).naming_objects_only() for text in texts])
    matrix, columns = object_token_matrix(
        scene.pipe.tokenizer, objective, scene.config.include_attributes, scene.device
    )
    embeds, _ = pipe.encode_prompt([g.prompt for g in objective.graphs], "cpu", 1, False)
    pipe.scheduler.set_timesteps(20)
    side = pipe.unet.config.sample_size * pipe.vae_scale_factor
    generators = [torch.Generator().manual_seed(seed) for seed in (13, 14)]
    latents = pipe.prepare_latents(2, 4, side, side, torch.float16, "cpu", generators).to(dtype)
    t = pipe.scheduler.timesteps[0]
    with (
        trace(pipe.unet, latents.shape[-2:], columns, levels=2) as store,
        frozen_weights(pipe.unet),
        no_graph_after(pipe.unet),
    ):
        weights = scene.config
        step = guided_step(pipe.unet, pipe.scheduler, latents, t, embeds, store, matrix, objective, weights)
    return step.grad


@pytest.mark.skipif(not (WEIGHTS_DIR / "model_index.json").exists(), reason="the embedded model's weights are absent")
def test_float16_gradient_stays_finite_and_matches_float32_where_an_object_is_barely_attended():
    # in float16 the softmax's backward overflowed here: maps of mass 1e-7 give map gradients of 1e8
    half, full = embedded_model_gradient(torch.float16), embedded_model_gradient(torch.float32)
    assert torch.isfinite(half).all()
    cosine = torch.nn.functional.cosine_similarity(half.flatten(1), full.flatten(1), dim=1)
    assert (cosine > 0.99).all(), cosine
    ratio = half.flatten(1).norm(dim=1) / full.flatten(1).norm(dim=1)
    assert ((ratio - 1).abs() < 0.05).all(), ratio


@pytest.mark.parametrize(
    ("dtype", "upcast_attention"),
    [(torch.float32, False), (torch.float32, True), (torch.float16, False)],
    ids=["float32", "float32-upcast", "float16"],
)
def test_capturing_leaves_the_models_output_as_it_was(tiny_pipe, dtype, upcast_attention):
    unet = copy.deepcopy(tiny_pipe.unet).to(dtype)
    for module in unet.modules():
        if isinstance(module, Attention):
            module.upcast_attention = upcast_attention  # as SD 2.x's configuration sets it
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(1, 4, 8, 8, generator=generator).to(dtype)
    embeds = torch.randn(1, 77, 32, generator=generator).to(dtype)
    with torch.no_grad():
        plain = unet(latents, 10, encoder_hidden_states=embeds).sample
        with trace(unet, (8, 8), torch.tensor([2, 3])) as store, store.capturing():
            captured = unet(latents, 10, encoder_hidden_states=embeds).sample
    tolerance = 1e-5 if dtype == torch.float32 else 1e-2
    torch.testing.assert_close(captured, plain, atol=tolerance, rtol=tolerance)
    assert all(store.level(height).dtype == torch.float32 for height in store.resolutions())


def test_only_the_thread_that_turned_capture_on_is_captured(tiny_pipe):
    """`cfg_forward="concurrent"` runs the unconditional forward in another thread meanwhile."""
    unet, latents, embeds = tiny_pipe.unet, torch.randn(1, 4, 8, 8), torch.randn(1, 77, 32)
    with trace(unet, (8, 8), torch.tensor([2, 3])) as store, store.capturing():
        other = threading.Thread(target=lambda: unet(latents, 10, encoder_hidden_states=embeds))
        other.start()
        other.join()
        assert store.maps == {}
        unet(latents, 10, encoder_hidden_states=embeds)
        assert store.resolutions() == [4, 8]
    assert not store.active


class AddsOne(AttnProcessor2_0):
    """A user's processor: diffusers' attention, plus one."""

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, *args, **kwargs):
        return super().__call__(attn, hidden_states, encoder_hidden_states, *args, **kwargs) + 1.0


def test_a_processor_that_is_not_ours_is_wrapped_not_replaced():
    from conftest import build_tiny_pipeline

    from infsplign_scene.attention import WrappingCaptureProcessor

    pipe = build_tiny_pipeline(seed=5)
    unet = pipe.unet
    unet.set_attn_processor(AddsOne())
    latents, t = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)), torch.tensor(10)
    text = torch.randn(1, 77, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = unet(latents, t, encoder_hidden_states=text).sample
        with trace(unet, (8, 8), levels=2) as store:
            assert any(isinstance(p, WrappingCaptureProcessor) for p in unet.attn_processors.values())
            with store.capturing():
                captured = unet(latents, t, encoder_hidden_states=text).sample
            maps = store.level(store.resolutions()[0])
    torch.testing.assert_close(captured, expected, atol=0, rtol=0)  # the user's processor's output, unchanged
    assert maps.shape[1] == 77 and torch.allclose(maps.sum(1), torch.ones_like(maps.sum(1)), atol=1e-4)
    assert all(isinstance(p, AddsOne) for p in unet.attn_processors.values())  # restored on exit


def test_guidance_runs_through_wrapped_processors():
    from conftest import build_tiny_pipeline

    from infsplign_scene import GuidanceConfig

    pipe = build_tiny_pipeline(seed=5)
    pipe.unet.set_attn_processor(AddsOne())
    result = ScenePipeline(pipe, GuidanceConfig(eta=20.0))(
        "a red circle to the left of a blue square", seed=0, num_inference_steps=2, progress=False
    )
    assert result.trace[0]["grad_norm"][0] > 0
    assert all(isinstance(p, AddsOne) for p in pipe.unet.attn_processors.values())


def test_a_pipeline_with_a_lora_composes_and_the_lora_changes_the_image(tmp_path):
    pytest.importorskip("peft")
    from conftest import build_tiny_pipeline
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    trained = build_tiny_pipeline(seed=7)
    torch.manual_seed(1)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights=False)
    trained.unet.add_adapter(lora)
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(trained.unet))
    StableDiffusionPipeline.save_lora_weights(tmp_path, unet_lora_layers=layers, safe_serialization=True)

    def image(pipe):
        result = ScenePipeline(pipe)(
            "a red circle to the left of a blue square", seed=0, num_inference_steps=2, progress=False
        )
        assert result.trace[0]["grad_norm"][0] > 0
        return np.asarray(result.images[0], dtype=np.int16)

    plain = build_tiny_pipeline(seed=7)
    with_lora = build_tiny_pipeline(seed=7)
    with_lora.load_lora_weights(tmp_path)
    assert np.abs(image(with_lora) - image(plain)).max() > 0


@pytest.mark.parametrize("packed", [True, False], ids=["tuple", "concatenated"])
def test_ip_adapters_processor_is_wrapped_and_its_image_tokens_left_out_of_the_map(packed):
    from conftest import build_tiny_pipeline
    from diffusers.models.attention_processor import IPAdapterAttnProcessor2_0

    unet = build_tiny_pipeline(seed=5).unet
    torch.manual_seed(0)
    processors = {}
    for name in unet.attn_processors:
        attn = unet.get_submodule(name.removesuffix(".processor"))
        cross = name.endswith("attn2.processor")
        processors[name] = (
            IPAdapterAttnProcessor2_0(attn.to_q.out_features, cross_attention_dim=32, num_tokens=(4,))
            if cross
            else AttnProcessor2_0()
        )
    unet.set_attn_processor(dict(processors))  # diffusers empties the dict it is given
    latents, t = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)), torch.tensor(10)
    text = torch.randn(1, 77, 32, generator=torch.Generator().manual_seed(1))
    image = torch.randn(1, 4, 32, generator=torch.Generator().manual_seed(2))
    condition = (text, [image]) if packed else torch.cat([text, image], dim=1)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # diffusers deprecates the concatenated form
        expected = unet(latents, t, encoder_hidden_states=condition).sample
        without_image = unet(latents, t, encoder_hidden_states=(text, [torch.zeros_like(image)])).sample
        with trace(unet, (8, 8), levels=2) as store:
            with store.capturing():
                captured = unet(latents, t, encoder_hidden_states=condition).sample
            maps = store.level(store.resolutions()[0])
    assert (expected - without_image).abs().max() > 0  # the image tokens take part in the output
    torch.testing.assert_close(captured, expected, atol=0, rtol=0)
    assert maps.shape[1] == 77 and torch.allclose(maps.sum(1), torch.ones_like(maps.sum(1)), atol=1e-4)
    assert all(type(p) is type(processors[n]) for n, p in unet.attn_processors.items())
