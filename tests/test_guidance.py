import json
import threading
from collections.abc import Callable

import numpy as np
import pytest
import torch
from conftest import DispatchedOperators, build_tiny_pipeline, objective_for

from infsplign_scene import VocabularyError
from infsplign_scene.attention import cross_attention_layers, trace
from infsplign_scene.guidance import GuidanceConfig, ScenePipeline, compose
from infsplign_scene.runtime import torch_threads
from infsplign_scene.step import guided_step
from infsplign_scene.tokens import object_token_matrix

PROMPT = "a red circle to the left of a blue square"
PHRASES = {
    "left_of": "to the left of",
    "right_of": "to the right of",
    "above": "above",
    "below": "below",
    "near": "near",
}


def run_plain(pipe, prompt, seed, steps=3, scale=4.0, ddim_eta=0.0):
    generator = torch.Generator().manual_seed(seed)
    return pipe(prompt, num_inference_steps=steps, guidance_scale=scale, eta=ddim_eta, generator=generator).images[0]


@pytest.mark.parametrize("ddim_eta", [0.0, 1.0])
@pytest.mark.parametrize("prompt", [PROMPT, "a red circle and a blue square"])
def test_eta_zero_or_no_relation_matches_plain_diffusers(tiny_pipe, prompt, ddim_eta):
    # also with the stochastic DDIM step: the same generator draws the same noise in the same order
    config = GuidanceConfig(eta=0.0) if "left" in prompt else GuidanceConfig(eta=50.0)
    ours = ScenePipeline(tiny_pipe, config)(
        prompt,
        seed=3,
        num_inference_steps=3,
        guidance_scale=4.0,
        ddim_eta=ddim_eta,
        prompt_style="as_written",
        progress=False,
    )
    plain = run_plain(tiny_pipe, prompt, seed=3, ddim_eta=ddim_eta)
    assert np.array_equal(np.asarray(ours.images[0]), np.asarray(plain))


@pytest.mark.parametrize("eta", [0.0, 50.0])
def test_sampling_records_no_autograd_graph_across_steps(tiny_pipe, eta):
    # a graph carried from step to step would grow with the number of steps (memory and time)
    config = GuidanceConfig(eta=eta)
    result = ScenePipeline(tiny_pipe, config)(
        PROMPT, seed=0, num_inference_steps=3, guidance_scale=4.0, output_type="latent", progress=False
    )
    assert result.images.grad_fn is None and not result.images.requires_grad


def test_guidance_changes_the_image_and_writes_a_json_trace(tiny_pipe):
    config = GuidanceConfig(eta=200.0)
    result = ScenePipeline(tiny_pipe, config)(
        PROMPT,
        seed=3,
        num_inference_steps=3,
        guidance_scale=4.0,
        ddim_eta=0.0,
        prompt_style="as_written",
        progress=False,
    )
    plain = run_plain(tiny_pipe, PROMPT, seed=3)
    assert not np.array_equal(np.asarray(result.images[0]), np.asarray(plain))
    assert len(result.trace) == 3
    step = result.trace[0]
    assert len(step["relation_loss"]) == 1 and len(step["relation_loss"][0]) == 1
    assert set(step["centroids"]) == {"4", "8"}  # coarse and middle level, keyed by resolution
    assert step["grad_norm"][0] > 0
    json.dumps(result.trace)
    assert [str(r) for r in result.graph.relations] == ["circle left_of square"]


def test_window_limits_guided_steps(tiny_pipe):
    config = GuidanceConfig(eta=10.0, start=0.0, end=0.5)
    result = ScenePipeline(tiny_pipe, config)(PROMPT, seed=0, num_inference_steps=4, progress=False)
    assert ["loss" in r for r in result.trace] == [True, True, False, False]


def test_processors_restored_after_call_and_after_error(tiny_pipe):
    before = dict(tiny_pipe.unet.attn_processors)
    ScenePipeline(tiny_pipe, GuidanceConfig(eta=5.0))(PROMPT, seed=0, num_inference_steps=2, progress=False)
    assert tiny_pipe.unet.attn_processors == before

    def explode(*args):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        ScenePipeline(tiny_pipe, GuidanceConfig(eta=5.0))(
            PROMPT, seed=0, num_inference_steps=2, progress=False, callback_on_step_end=explode
        )
    assert tiny_pipe.unet.attn_processors == before


def test_capture_is_decoder_only_and_grouped_by_resolution(tiny_pipe):
    names = cross_attention_layers(tiny_pipe.unet)
    assert names and all(name.startswith("up_blocks.") and name.endswith("attn2") for name in names)
    latents = torch.randn(1, 4, 8, 8)
    embeds = torch.randn(1, 77, 32)
    with trace(tiny_pipe.unet, (8, 8), torch.tensor([2, 3])) as store:
        store.active = True
        tiny_pipe.unet(latents, 10, encoder_hidden_states=embeds)
    assert store.resolutions() == [4, 8]
    assert store.level(4).shape == (1, 2, 4, 4)
    # probabilities over all 77 positions: the kept columns hold part of the mass, never more
    assert 0 < store.level(8).sum(dim=1).max() <= 1.0 + 1e-5


@pytest.mark.parametrize("predicate", list(PHRASES))
def test_one_gradient_step_lowers_the_objective_for_every_predicate(tiny_pipe, predicate):
    pipe = tiny_pipe
    prompt = f"a red circle {PHRASES[predicate]} a blue square"
    scene = ScenePipeline(pipe, GuidanceConfig(eta=1.0, margin=0.6, near_margin=0.01))
    objective = objective_for(prompt)
    token_matrix, columns = object_token_matrix(
        scene.pipe.tokenizer, objective, scene.config.include_attributes, scene.device
    )
    embeds, _ = pipe.encode_prompt([prompt], "cpu", 1, False)
    pipe.scheduler.set_timesteps(10)
    t = pipe.scheduler.timesteps[2]
    weights = scene.config
    torch.manual_seed(0)
    latents = torch.randn(1, 4, 8, 8)
    with trace(pipe.unet, (8, 8), columns) as store:

        def objective_at(x):
            return guided_step(pipe.unet, pipe.scheduler, x, t, embeds, store, token_matrix, objective, weights)

        step = objective_at(latents)
        move = 0.05 * step.grad / step.grad.norm()
        lower, higher = objective_at(latents - move).value, objective_at(latents + move).value
    assert lower.total.item() < step.value.total.item() < higher.total.item()


def cfg_step(pipe, prompts: list[str], config: GuidanceConfig):
    """The columns to trace, and `guided_step` with CFG on seeded latents: step(store, **options)."""
    scene = ScenePipeline(pipe, config)
    objective = objective_for(prompts)
    token_matrix, columns = object_token_matrix(
        scene.pipe.tokenizer, objective, scene.config.include_attributes, scene.device
    )
    embeds, negative = pipe.encode_prompt(prompts, "cpu", 1, True)
    pipe.scheduler.set_timesteps(10)
    t, weights = pipe.scheduler.timesteps[2], scene.config
    latents = torch.randn(len(prompts), 4, 8, 8, generator=torch.Generator().manual_seed(0))

    def step(store, **options):
        arguments = (pipe.unet, pipe.scheduler, latents, t, embeds, store, token_matrix, objective, weights)
        return guided_step(*arguments, negative_embeds=negative, **options)

    return columns, step


def test_measuring_first_skips_the_backward_of_settled_images_only(tiny_pipe):
    # "near" within 1.5 always holds (settled); "left of" with margin 1 never does
    prompts = ["a red circle near a blue square", "a red circle left of a blue square"]
    columns, step = cfg_step(tiny_pipe, prompts, GuidanceConfig(eta=1.0, margin=1.0, near_margin=1.5))
    with trace(tiny_pipe.unet, (8, 8), columns, levels=2, keep_features=True) as store:
        full, measured = (step(store, measure_first=first) for first in (False, True))
    assert full.value.settled.tolist() == [True, False] and full.backward.tolist() == [True, True]
    assert measured.backward.tolist() == [False, True]
    assert full.grad[0].abs().sum() > 0  # presence and balance still pull the settled image
    assert measured.grad[0].abs().sum() == 0
    torch.testing.assert_close(measured.grad[1], full.grad[1], atol=1e-6, rtol=1e-4)
    torch.testing.assert_close(measured.value.total, full.value.total, atol=1e-6, rtol=1e-4)
    torch.testing.assert_close(measured.noise_text, full.noise_text, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(measured.noise_uncond, full.noise_uncond, atol=1e-5, rtol=1e-4)
    for height, maps in full.levels.items():
        torch.testing.assert_close(measured.levels[height], maps, atol=1e-6, rtol=1e-4)
    torch.testing.assert_close(measured.value.second_copy, full.value.second_copy, atol=1e-5, rtol=1e-4)


def test_joint_cfg_forward_gives_the_split_steps_numbers(tiny_pipe):
    prompts = ["a red circle left of a blue square", "a red circle above a blue square"]
    columns, step = cfg_step(tiny_pipe, prompts, GuidanceConfig(eta=1.0))
    batches = []
    hook = tiny_pipe.unet.register_forward_hook(lambda module, args, output: batches.append(args[0].shape[0]))
    with trace(tiny_pipe.unet, (8, 8), columns, levels=2, keep_features=True) as store:
        split, joint = (step(store, cfg_forward=mode) for mode in ("split", "joint"))
    hook.remove()
    assert split.value.second_copy.shape == (2, 2)  # the unconditional half's features are not the images'
    torch.testing.assert_close(joint.value.second_copy, split.value.second_copy, atol=1e-5, rtol=1e-4)
    assert batches == [2, 2, 4]  # split: unconditional then conditional; joint: one CFG batch
    assert split.grad.abs().sum() > 0
    torch.testing.assert_close(joint.grad, split.grad, atol=1e-6, rtol=1e-4)
    torch.testing.assert_close(joint.value.total, split.value.total, atol=1e-6, rtol=1e-4)
    torch.testing.assert_close(joint.noise_text, split.noise_text, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(joint.noise_uncond, split.noise_uncond, atol=1e-5, rtol=1e-4)
    assert not joint.noise_uncond.requires_grad


@pytest.mark.parametrize("cfg_forward", ["split", "joint"])
def test_guided_step_neither_copies_from_nor_waits_for_the_host(tiny_pipe, cfg_forward):
    # each would make the host wait for a GPU, and neither may run inside a CUDA-graph capture
    prompts = ["a red circle left of a blue square near a green triangle"]
    columns, step = cfg_step(tiny_pipe, prompts, GuidanceConfig(eta=1.0))
    with trace(tiny_pipe.unet, (8, 8), columns, levels=2, keep_features=True) as store:
        step(store, cfg_forward=cfg_forward)  # warm the cached tables
        with DispatchedOperators() as operators_run:
            result = step(store, cfg_forward=cfg_forward)
    assert result.grad.abs().sum() > 0
    host_traffic = (torch.ops.aten.lift_fresh.default, torch.ops.aten._local_scalar_dense.default)
    assert [str(func) for func in operators_run.seen if func in host_traffic] == []


def forward_calls(unet) -> tuple[list[tuple[str, int, int]], Callable[[], None]]:
    """Each UNet forward's (thread name, torch threads, batch), and the function that stops recording."""
    calls = []

    def record(module, args, output):
        name = threading.current_thread().name  # the worker thread's name ends in its number
        calls.append((name.rstrip("_0123456789"), torch.get_num_threads(), args[0].shape[0]))

    return calls, unet.register_forward_hook(record).remove


def test_concurrent_cfg_forward_runs_the_unconditional_pass_beside_the_conditional_one(tiny_pipe):
    prompts = ["a red circle left of a blue square", "a red circle above a blue square"]
    columns, step = cfg_step(tiny_pipe, prompts, GuidanceConfig(eta=1.0))
    main = threading.current_thread().name
    with torch_threads(2), trace(tiny_pipe.unet, (8, 8), columns, levels=2) as store:
        split = step(store, cfg_forward="split")
        calls, stop = forward_calls(tiny_pipe.unet)
        concurrent = step(store, cfg_forward="concurrent")
        stop()
        assert torch.get_num_threads() == 2  # the backward and whatever comes after get both threads again
    # the threads are shared out: one each
    assert sorted(calls) == sorted([("infsplign-unconditional", 1, 2), (main, 1, 2)])
    assert split.grad.abs().sum() > 0
    torch.testing.assert_close(concurrent.grad, split.grad, atol=1e-6, rtol=1e-4)
    torch.testing.assert_close(concurrent.value.total, split.value.total, atol=1e-6, rtol=1e-4)
    torch.testing.assert_close(concurrent.noise_text, split.noise_text, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(concurrent.noise_uncond, split.noise_uncond, atol=1e-5, rtol=1e-4)


def test_concurrent_cfg_forward_with_one_thread_runs_the_split_step(tiny_pipe):
    columns, step = cfg_step(tiny_pipe, ["a red circle left of a blue square"], GuidanceConfig(eta=1.0))
    main = threading.current_thread().name
    with torch_threads(1), trace(tiny_pipe.unet, (8, 8), columns, levels=2) as store:
        calls, stop = forward_calls(tiny_pipe.unet)
        step(store, cfg_forward="concurrent")
        stop()
    assert calls == [(main, 1, 1), (main, 1, 1)]


def test_an_error_in_the_unconditional_thread_reaches_the_caller_and_threads_are_restored(tiny_pipe):
    columns, step = cfg_step(tiny_pipe, ["a red circle left of a blue square"], GuidanceConfig(eta=1.0))

    def fail(module, args, kwargs):
        if threading.current_thread().name.startswith("infsplign-unconditional"):
            raise RuntimeError("unconditional pass failed")

    hook = tiny_pipe.unet.register_forward_pre_hook(fail, with_kwargs=True)
    try:
        with torch_threads(2), trace(tiny_pipe.unet, (8, 8), columns, levels=2) as store:
            with pytest.raises(RuntimeError, match="unconditional pass failed"):
                step(store, cfg_forward="concurrent")
            assert torch.get_num_threads() == 2
    finally:
        hook.remove()


def test_joint_cfg_forward_in_the_pipeline_gives_the_same_images(tiny_pipe):
    def sample(cfg_forward: str):
        batches = []
        hook = tiny_pipe.unet.register_forward_hook(lambda module, args, output: batches.append(args[0].shape[0]))
        config = GuidanceConfig(eta=10.0, cfg_forward=cfg_forward)
        result = ScenePipeline(tiny_pipe, config)(PROMPT, seed=0, num_inference_steps=2, progress=False)
        hook.remove()
        return result, batches

    (split, split_batches), (joint, joint_batches) = sample("split"), sample("joint")
    with torch_threads(2):
        concurrent, concurrent_batches = sample("concurrent")
    assert split_batches == [1, 1, 1, 1] == concurrent_batches and joint_batches == [2, 2]  # two guided steps
    for other in (joint, concurrent):
        difference = np.abs(np.asarray(other.images[0], dtype=int) - np.asarray(split.images[0], dtype=int))
        assert difference.max() <= 1  # float rounding: a batch of 2 against two of 1, or one thread against two


def test_batch_of_scenes_with_different_relation_counts(tiny_pipe):
    scenes = [PROMPT, "a red circle above a blue square and left of a green triangle", "a red circle"]
    result = ScenePipeline(tiny_pipe, GuidanceConfig(eta=20.0))(
        scenes, seed=[0, 1, 2], num_inference_steps=2, progress=False
    )
    assert len(result.images) == 3
    assert [len(r) for r in result.trace[0]["relation_loss"]] == [2, 2, 2]
    assert result.trace[0]["relation_loss"][2] == [0.0, 0.0]


def test_shapes_family_encodes_a_prompt_naming_the_objects_only(tiny_pipe):
    from infsplign_scene import InfsplignError

    scene = ScenePipeline(tiny_pipe, GuidanceConfig(eta=50.0), preset=shapes_preset())
    rewritten = scene(PROMPT, seed=0, num_inference_steps=2, progress=False)
    assert rewritten.graph.prompt == "a red circle and a blue square"
    assert [str(r) for r in rewritten.graph.relations] == ["circle left_of square"]
    same = scene(rewritten.graph, seed=0, num_inference_steps=2, prompt_style="as_written", progress=False)
    assert np.array_equal(np.asarray(rewritten.images[0]), np.asarray(same.images[0]))
    written = scene(PROMPT, seed=0, num_inference_steps=2, prompt_style="as_written", progress=False)
    assert written.graph.prompt == PROMPT
    assert not np.array_equal(np.asarray(rewritten.images[0]), np.asarray(written.images[0]))
    with pytest.raises(InfsplignError, match="prompt_style"):
        scene(PROMPT, prompt_style="relations")


def test_seed_is_honoured(tiny_pipe):
    scene = ScenePipeline(tiny_pipe, GuidanceConfig(eta=20.0))
    first = scene(PROMPT, seed=5, num_inference_steps=2, progress=False).images[0]
    second = scene(PROMPT, seed=5, num_inference_steps=2, progress=False).images[0]
    other = scene(PROMPT, seed=6, num_inference_steps=2, progress=False).images[0]
    assert np.array_equal(np.asarray(first), np.asarray(second))
    assert not np.array_equal(np.asarray(first), np.asarray(other))


def test_compose_accepts_a_diffusers_pipe_dict_and_json(tiny_pipe, tmp_path):
    graph = {
        "objects": [{"id": "c", "name": "red circle"}, {"id": "s", "name": "blue square"}],
        "relations": [{"subject": "c", "predicate": "above", "object": "s"}],
    }
    path = tmp_path / "scene.json"
    path.write_text(json.dumps(graph))
    for scene in (graph, str(path), path):
        result = compose(scene, pipe=tiny_pipe, seed=0, num_inference_steps=2, progress=False)
        assert result.images[0].size == (16, 16)
        assert result.graph.relations[0].predicate == "above"


def test_unknown_word_and_bad_size_are_clear_errors(tiny_pipe):
    scene = ScenePipeline(tiny_pipe)
    with pytest.raises(VocabularyError, match="'dog'"):
        scene("a red dog left of a blue square", seed=0, num_inference_steps=1, progress=False)
    with pytest.raises(Exception, match="multiples of 2"):
        scene(PROMPT, seed=0, num_inference_steps=1, height=15, progress=False)


def test_skip_satisfied_checks_without_backward_once_settled(tiny_pipe):
    # "near" within 1.5 always holds, so only the first step needs a backward
    config = GuidanceConfig(eta=10.0, near_margin=1.5, skip_satisfied=True)
    result = ScenePipeline(tiny_pipe, config)(
        "a red circle near a blue square", seed=0, num_inference_steps=4, progress=False
    )
    assert result.trace[0]["backward"] == [True]
    assert all(step["backward"] == [False] and step["updated"] == [False] for step in result.trace[1:])
    assert all("satisfied" in step for step in result.trace)


def test_skip_satisfied_leaves_a_settled_image_unguided_in_a_mixed_batch(tiny_pipe):
    # "near" within 1.5 holds from the first step; "left of" with margin 1 never does
    prompts = ["a red circle near a blue square", "a red circle left of a blue square"]
    config = GuidanceConfig(eta=10.0, margin=1.0, near_margin=1.5, skip_satisfied=True, normalize_gradient=True)

    def sample(eta: float, measure_first: bool = True):
        scene = ScenePipeline(tiny_pipe, config.model_copy(update={"eta": eta, "measure_first": measure_first}))
        return scene(prompts, seed=[0, 1], num_inference_steps=3, output_type="latent", progress=False)

    guided_result, every_backward = sample(10.0), sample(10.0, measure_first=False)
    guided, unguided = guided_result.images, sample(0.0).images
    assert [step["updated"] for step in guided_result.trace] == [[False, True]] * 3
    # half the batch settled at the first step: from then on it is measured first, one backward only
    assert [step["backward"] for step in guided_result.trace] == [[True, True]] + [[False, True]] * 2
    assert [step["backward"] for step in every_backward.trace] == [[True, True]] * 3
    torch.testing.assert_close(every_backward.images, guided, atol=1e-4, rtol=0)
    torch.testing.assert_close(guided[0], unguided[0], atol=1e-4, rtol=0)
    assert (guided[1] - unguided[1]).abs().max() > 1e-2


def test_weights_are_frozen_only_during_the_call(tiny_pipe):
    flags = [p.requires_grad for p in tiny_pipe.unet.parameters()]
    ScenePipeline(tiny_pipe, GuidanceConfig(eta=5.0))(PROMPT, seed=0, num_inference_steps=1, progress=False)
    assert [p.requires_grad for p in tiny_pipe.unet.parameters()] == flags


def test_bfloat16_guidance_pass_gives_finite_images(tiny_pipe):
    config = GuidanceConfig(eta=50.0, guidance_precision="bfloat16")
    result = ScenePipeline(tiny_pipe, config)(PROMPT, seed=0, num_inference_steps=2, progress=False)
    assert np.isfinite(np.asarray(result.images[0], dtype=float)).all()
    assert all(n > 0 for n in result.trace[0]["grad_norm"])


def test_callback_can_replace_latents_and_bad_settings_are_typed_errors(tiny_pipe):
    from infsplign_scene import InfsplignError

    seen = []

    def callback(pipe, step, timestep, tensors):
        seen.append(step)
        return {"latents": torch.zeros_like(tensors["latents"])}

    result = ScenePipeline(tiny_pipe)(
        PROMPT, seed=0, num_inference_steps=2, callback_on_step_end=callback, progress=False
    )
    assert seen == [0, 1] and result.images[0].size == (16, 16)
    with pytest.raises(InfsplignError, match="num_inference_steps"):
        ScenePipeline(tiny_pipe)(PROMPT, num_inference_steps=0)
    with pytest.raises(InfsplignError, match="ddim_eta"):
        ScenePipeline(tiny_pipe)(PROMPT, ddim_eta=1.5)
    with pytest.raises(InfsplignError, match="StableDiffusionPipeline"):
        ScenePipeline(object())


def test_capture_can_be_limited_to_the_two_coarsest_decoder_levels():
    from diffusers import UNet2DConditionModel

    from infsplign_scene.lab.testing import SD14_UNET_CONFIG

    config = dict(SD14_UNET_CONFIG, block_out_channels=(32, 32, 32, 32), cross_attention_dim=32, attention_head_dim=2)
    unet = UNet2DConditionModel(**config, norm_num_groups=8)
    every = cross_attention_layers(unet)
    two = cross_attention_layers(unet, levels=2)
    assert {name.split(".")[1] for name in every} == {"1", "2", "3"}
    assert {name.split(".")[1] for name in two} == {"1", "2"}  # SD's up_blocks.1 and up_blocks.2


def test_no_graph_after_the_captured_levels_keeps_the_gradient():
    from diffusers import UNet2DConditionModel

    from infsplign_scene.attention import no_graph_after
    from infsplign_scene.lab.testing import SD14_UNET_CONFIG
    from infsplign_scene.step import frozen_weights

    torch.manual_seed(0)
    config = dict(SD14_UNET_CONFIG, block_out_channels=(32, 32, 32, 32), cross_attention_dim=32, attention_head_dim=2)
    unet = UNet2DConditionModel(**config, norm_num_groups=8).eval()
    objective = objective_for("a red circle to the left of a blue square")
    matrix, columns = torch.eye(2).unsqueeze(0), torch.tensor([2, 3])
    latents, embeds = torch.randn(1, 4, 16, 16), torch.randn(1, 77, 32)

    class Identity:
        def scale_model_input(self, sample, t):
            return sample

    weights = GuidanceConfig()
    grads = []
    for truncate in (False, True):
        with trace(unet, (16, 16), columns, levels=2) as store, frozen_weights(unet):
            if truncate:
                with no_graph_after(unet, levels=2):
                    step = guided_step(unet, Identity(), latents, 5, embeds, store, matrix, objective, weights)
            else:
                step = guided_step(unet, Identity(), latents, 5, embeds, store, matrix, objective, weights)
        grads.append(step.grad)
    assert torch.allclose(grads[0], grads[1], atol=1e-6) and grads[0].abs().sum() > 0


def test_non_finite_loss_skips_the_update_and_is_recorded(tiny_pipe, monkeypatch):
    from infsplign_scene.compile import Objective

    evaluate = Objective.evaluate

    def poisoned(self, stats, weights):  # fault injection: the objective turns NaN
        value = evaluate(self, stats, weights)
        value.total = value.total * float("nan")
        return value

    monkeypatch.setattr(Objective, "evaluate", poisoned)
    result = ScenePipeline(tiny_pipe, GuidanceConfig(eta=100.0))(PROMPT, seed=3, num_inference_steps=2, progress=False)
    assert all("non-finite" in step["warning"] for step in result.trace)
    assert all(norm == 0.0 for step in result.trace for norm in step["grad_norm"])
    assert np.isfinite(np.asarray(result.images[0], dtype=float)).all()


def test_by_default_an_sd_pipeline_runs_the_cfg_forwards_side_by_side_and_the_embedded_model_one_after_the_other(
    tiny_pipe,
):
    from infsplign_scene.lab.shapes.model import build_tokenizer

    tokenizer = build_tokenizer()
    sd_family = build_tiny_pipeline(tokenizer)

    def sample(pipe, preset=None) -> tuple[set[str], torch.Tensor, list[dict]]:
        """The threads that ran the UNet's forwards, the final latents and the trace."""
        calls, stop = forward_calls(pipe.unet)
        with torch_threads(2):
            result = ScenePipeline(pipe, preset=preset)(
                PROMPT, seed=0, num_inference_steps=2, guidance_scale=3.0, output_type="latent", progress=False
            )
        stop()
        return {name for name, _, _ in calls}, result.images, result.trace

    main = threading.current_thread().name
    (threads, latents, steps), (_, latents_again, steps_again) = sample(sd_family), sample(sd_family)
    assert threads == {main, "infsplign-unconditional"}
    assert steps[0]["grad_norm"][0] > 0
    torch.testing.assert_close(latents, latents_again, atol=0, rtol=0)  # a seed gives the same result
    assert steps == steps_again
    assert sample(tiny_pipe, shapes_preset())[0] == {main}


def shapes_preset():
    from infsplign_scene import Preset, embedded_model_dir

    return Preset.load(embedded_model_dir("shapes") / "preset.json")


def test_a_preset_comes_from_the_folder_the_pipeline_was_loaded_from(tiny_pipe, tmp_path):
    from infsplign_scene import ConfigError, Preset

    assert Preset.for_pipeline(tiny_pipe).family == "stable-diffusion"  # built in memory: the family's defaults
    assert ScenePipeline.from_pretrained("shapes").preset == shapes_preset()
    tiny_pipe.save_pretrained(tmp_path / "model")
    (tmp_path / "model" / "preset.json").write_text(
        '{"family": "mine", "guidance": {"eta": 3.0}, "sampling": {"num_inference_steps": 7}}'
    )
    loaded = ScenePipeline.from_pretrained(tmp_path / "model")
    assert (loaded.preset.family, loaded.config.eta, loaded.preset.sampling.num_inference_steps) == ("mine", 3.0, 7)
    (tmp_path / "model" / "preset.json").write_text('{"family": "mine", "guidance": {"eta": "lots"}}')
    with pytest.raises(ConfigError, match="guidance.eta"):
        ScenePipeline.from_pretrained(tmp_path / "model")


def test_guidance_settings_are_finite_bounded_and_consistent():
    from infsplign_scene import ConfigError, InfsplignError

    for bad, field in (({"eta": float("inf")}, "eta"), ({"eta": 1e308}, "eta"), ({"start": 0.8, "end": 0.2}, "start")):
        with pytest.raises(ConfigError, match=field) as raised:
            GuidanceConfig(**bad)
        assert isinstance(raised.value, InfsplignError) and isinstance(raised.value, ValueError)
    with pytest.raises(ConfigError, match="measure_first"):
        GuidanceConfig(cuda_graph=True, skip_satisfied=True)
    assert GuidanceConfig(cuda_graph=True, skip_satisfied=True, measure_first=False).cuda_graph
    with pytest.raises(ConfigError, match="alpha"):
        GuidanceConfig().updated(alpha=-1)


def test_one_scene_with_several_seeds_gives_an_image_per_seed(tiny_pipe):
    from infsplign_scene import InfsplignError

    scene = ScenePipeline(tiny_pipe)
    prompt = "a red circle to the left of a blue square"
    several = scene(prompt, seed=[0, 1, 2], num_inference_steps=2, output_type="latent", progress=False)
    one = scene(prompt, seed=1, num_inference_steps=2, output_type="latent", progress=False)
    assert several.images.shape[0] == 3 and several.seeds == [0, 1, 2]
    torch.testing.assert_close(several.images[1:2], one.images, atol=1e-5, rtol=1e-4)
    with pytest.raises(InfsplignError, match="2 seeds or generators for 3 scenes"):
        scene([prompt] * 3, seed=[0, 1], num_inference_steps=1, progress=False)
