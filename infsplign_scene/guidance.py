"""InfSplign guidance of a diffusers Stable Diffusion pipeline: `ScenePipeline` and `compose`.

At each guided step: the unconditional forward runs without grad; the conditional forward runs
with grad on the latents while the decoder's cross-attention maps of the objects' tokens are
captured; the compiled objective (float32) is differentiated with respect to the latents and
the classifier-free-guided noise prediction is shifted: ``noise_pred += eta * grad``. With
`skip_satisfied`, an image whose relations all hold with margin gets no update, and once at least
half the batch was settled the step measures first and runs the backward only where it is needed.
Unguided steps are exactly the diffusers loop, so eta = 0 reproduces the plain pipeline.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from .analysis import analyze
from .attention import no_graph_after, trace
from .compile import compile_objective
from .config import GuidanceConfig, Preset, SamplingDefaults
from .cuda_graphs import CapturedGuidedStep
from .embedded import DEFAULT_MODEL, embedded_model_dir, embedded_model_names
from .errors import InfsplignError, NonFiniteError
from .families import decode, encode, family_of
from .parsing import load_scene
from .result import ComposeResult, record_colour_copies, record_step
from .runtime import check_device, quiet_loading, torch_threads
from .scene import SceneGraph
from .step import (
    GuidedStep,
    classifier_free,
    finite_rows,
    frozen_weights,
    guided_step,
    per_image,
    unconditional_and_conditional,
)
from .tokens import check_vocabulary, object_token_matrix


class ScenePipeline:
    """Spatially guided sampling on top of a diffusers `StableDiffusionPipeline`.

    >>> scene_pipe = ScenePipeline(sd_pipe)              # or ScenePipeline.from_pretrained(folder)
    >>> result = scene_pipe("a cat left of a dog", seed=0)
    >>> result.images[0].save("cat.png")
    """

    def __init__(self, pipe: Any, config: GuidanceConfig | None = None, preset: Preset | None = None) -> None:
        """`preset`: the model family's settings, by default `Preset.for_pipeline(pipe)` (the
        `preset.json` beside the weights, else the family's); `config` overrides its guidance."""
        family_of(pipe)  # a typed error for a pipeline we cannot guide
        self.pipe = pipe
        self.preset = preset or Preset.for_pipeline(pipe)
        self.config = config or self.preset.guidance

    @classmethod
    def from_pretrained(cls, path_or_id: str | Path | None = None, **kwargs: Any) -> ScenePipeline:
        """Load a Stable Diffusion (1.x/2.x or XL) folder, an embedded model by name
        (`embedded_model_names()`) or a hub id (offline: a local folder). None loads the default
        embedded model. Weights load from safetensors only; a folder that cannot be loaded is an
        `InfsplignError` naming it."""
        if path_or_id is None or str(path_or_id) in embedded_model_names():
            path_or_id = embedded_model_dir(str(path_or_id or DEFAULT_MODEL))
        source = str(path_or_id)
        local = Path(source).expanduser()
        if not local.is_dir() and (local.is_absolute() or source.startswith(".") or source.count("/") != 1):
            raise InfsplignError(f"no model folder at {source!r} (and it is not a hub id of the form owner/name)")
        kwargs = {"safety_checker": None, "requires_safety_checker": False, "use_safetensors": True, **kwargs}
        with quiet_loading():
            from diffusers import DiffusionPipeline

            try:  # the class the folder names (its model_index.json); `family_of` then checks it
                pipe = DiffusionPipeline.from_pretrained(str(local) if local.is_dir() else source, **kwargs)
            except (OSError, ValueError) as error:
                reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                raise InfsplignError(f"cannot load a Stable Diffusion pipeline from {source!r}: {reason}") from None
        return cls(pipe)

    def to(self, *args: Any, **kwargs: Any) -> ScenePipeline:
        """Move the pipeline, as diffusers' `.to`; a device this torch cannot use is an `InfsplignError`."""
        for value in (*args, kwargs.get("device")):
            if isinstance(value, (str, torch.device)):
                check_device(value)
        self.pipe.to(*args, **kwargs)
        return self

    @property
    def device(self) -> torch.device:
        """Where sampling runs (with model CPU offload, the accelerator the parts move to)."""
        return getattr(self.pipe, "_execution_device", None) or self.pipe.unet.device

    def __call__(
        self,
        scene: SceneGraph | dict | str | Path | list,
        *,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        ddim_eta: float | None = None,
        prompt_style: str | None = None,
        cpu_threads: int | None = None,
        guidance_rescale: float | None = None,
        seed: int | list[int] | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        config: GuidanceConfig | None = None,
        negative_prompt: str | list[str] | None = None,
        height: int | None = None,
        width: int | None = None,
        latents: torch.Tensor | None = None,
        output_type: str = "pil",
        callback_on_step_end: Any = None,
        progress: bool = True,
        record_maps: bool = False,
    ) -> ComposeResult:
        """Sample one image per scene; a list of scenes is sampled as one batch. With a list of
        seeds (or generators), one per scene, or one scene drawn once per seed.

        Steps, CFG scale, `guidance_rescale`, `ddim_eta`, `prompt_style` and `cpu_threads` default to the preset's
        (`SamplingDefaults` says what each means); a value given here is validated the same way."""
        started = time.perf_counter()
        config = config or self.config
        given = {
            "num_inference_steps": num_inference_steps,
            "guidance_scale": guidance_scale,
            "ddim_eta": ddim_eta,
            "prompt_style": prompt_style,
            "cpu_threads": cpu_threads,
            "guidance_rescale": guidance_rescale,
        }
        sampling = self.preset.sampling.updated(**{k: v for k, v in given.items() if v is not None})
        num_inference_steps, guidance_scale = sampling.num_inference_steps, sampling.guidance_scale
        ddim_eta, prompt_style = sampling.ddim_eta, sampling.prompt_style
        threads = sampling.cpu_threads if self.device.type == "cpu" else None
        with torch_threads(threads):
            pipe, unet, scheduler = self.pipe, self.pipe.unet, self.pipe.scheduler
            scenes = scene if isinstance(scene, list) else [scene]
            draws = seed if isinstance(seed, list) else generator if isinstance(generator, list) else None
            if draws is not None and len(scenes) == 1:
                scenes = scenes * len(draws)  # one scene, several seeds: an image per seed
            if draws is not None and len(draws) != len(scenes):
                raise InfsplignError(f"{len(draws)} seeds or generators for {len(scenes)} scenes: give one per scene")
            graphs = [load_scene(s) for s in scenes]
            prompts_given = [graph.prompt or "" for graph in graphs]
            if prompt_style == "objects":
                graphs = [graph.naming_objects_only() for graph in graphs]
            analyses = [analyze(graph, policy=config.policy) for graph in graphs]
            objective = compile_objective(analyses, redundant_weight=config.redundant_weight)
            prompts = [g.prompt or "" for g in objective.graphs]
            for prompt in prompts:
                check_vocabulary(pipe.tokenizer, prompt, self.preset.nouns)
            batch = len(prompts)
            device = self.device
            if config.cuda_graph and device.type != "cuda":
                raise InfsplignError(
                    f"cuda_graph=True replays the guided step from a CUDA graph, but the pipeline is on {device}: "
                    "move it with .to('cuda'), or set cuda_graph=False"
                )
            height = height or unet.config.sample_size * pipe.vae_scale_factor
            width = width or unet.config.sample_size * pipe.vae_scale_factor
            if height % pipe.vae_scale_factor or width % pipe.vae_scale_factor:
                raise InfsplignError(
                    f"height and width must be multiples of {pipe.vae_scale_factor}, got {height}x{width}"
                )
            if generator is None and seed is not None:
                seeds = seed if isinstance(seed, list) else [seed]
                generators = [torch.Generator(device).manual_seed(s) for s in seeds]
                generator = generators[0] if len(generators) == 1 else generators
            do_cfg = guidance_scale > 1
            text = encode(pipe, prompts, device, do_cfg, negative_prompt, (height, width))
            prompt_embeds = text.prompt_embeds
            token_matrix = object_token_matrix(
                pipe.tokenizer, objective, include_attributes=config.include_attributes, device=device
            )
            scheduler.set_timesteps(num_inference_steps, device=device)
            timesteps = scheduler.timesteps
            latents = pipe.prepare_latents(
                batch, unet.config.in_channels, height, width, prompt_embeds.dtype, device, generator, latents
            )
            extra_step_kwargs = pipe.prepare_extra_step_kwargs(generator, ddim_eta)
            latent_size = (latents.shape[-2], latents.shape[-1])
            columns = token_matrix[1]
            weights = config
            records: list[dict] = []
            maps: dict[int, dict[int, torch.Tensor]] | None = {} if record_maps else None
            guide_any = objective.num_relations > 0 and config.eta > 0
            negative = text.negative_embeds
            captured: CapturedGuidedStep | None = None
            settled = torch.zeros(batch, dtype=torch.bool, device=device)  # per image, at the last guided step
            last_guided: tuple[dict, dict[int, torch.Tensor]] | None = None  # its record and object maps
            with (  # the coarse and middle levels; their inputs too when the report looks for second copies
                trace(unet, latent_size, columns, levels=2, keep_features=bool(config.split_resemblance)) as store,
                frozen_weights(unet),
                no_graph_after(unet, levels=2),
                tqdm(total=len(timesteps), disable=not progress or _bar_disabled(pipe)) as bar,
            ):
                step_arguments = dict(
                    prompt_embeds=prompt_embeds,
                    store=store,
                    token_matrix=token_matrix[0],
                    objective=objective.to(device),
                    weights=weights,
                    negative_embeds=negative,
                    precision=config.guidance_precision,
                    combination=config.combination,
                    cfg_forward=config.cfg_forward,
                    added_cond=text.added,
                    negative_added_cond=text.negative_added,
                )
                for i, t in enumerate(timesteps):
                    record: dict[str, Any] = {"step": i, "timestep": int(t)}
                    if guide_any and config.guided(i, len(timesteps)):
                        # most of the batch settled at the last step: measure first, backward only where needed
                        measure_first = (
                            config.skip_satisfied and config.measure_first and settled.float().mean().item() >= 0.5
                        )
                        if config.cuda_graph and not measure_first:
                            if captured is None:  # recorded at the first guided step, replayed from then on
                                captured = CapturedGuidedStep(unet, scheduler, latents, t, **step_arguments)
                            step = captured(latents, t)
                        else:
                            step = guided_step(
                                unet, scheduler, latents, t, measure_first=measure_first, **step_arguments
                            )
                        record_step(step, config, record, maps)
                        last_guided = (record, step.levels)
                        noise_pred, settled = self._guided_noise(step, sampling, config), step.value.settled
                    else:
                        with torch.no_grad():
                            noise_uncond, noise_pred = unconditional_and_conditional(
                                unet, scheduler, latents, t, prompt_embeds, negative, text.added, text.negative_added
                            )
                        noise_pred = classifier_free(noise_uncond, noise_pred, sampling)
                    latents = scheduler.step(noise_pred, t, latents, **extra_step_kwargs, return_dict=False)[0]
                    records.append(record)
                    if callback_on_step_end is not None:  # as in diffusers: it may hand back new latents
                        outputs = callback_on_step_end(pipe, i, t, {"latents": latents}) or {}
                        latents = outputs.get("latents", latents)
                    bar.update()
            broken = (~torch.isfinite(latents).flatten(1).all(dim=1)).nonzero().flatten().tolist()
            if broken:  # never an image from non-finite latents
                raise NonFiniteError(
                    f"sampling produced non-finite latents for image(s) {broken}; lower the guidance weight (eta) "
                    "or the CFG scale",
                    images=broken,
                )
            with torch.no_grad():
                pixels = None if output_type == "latent" else decode(pipe, latents)
                if pixels is not None and last_guided is not None and config.split_colour is not None:
                    image = pipe.image_processor.denormalize(pixels)  # [0, 1], as diffusers post-processes
                    record_colour_copies(*last_guided, image, objective, config.split_colour)
                scaled = [True] * batch  # pixels in [-1, 1]
                images = latents if pixels is None else pipe.image_processor.postprocess(pixels, output_type, scaled)
            return ComposeResult(
                images=images,
                graphs=objective.graphs,
                objective=objective,
                trace=records,
                config=config,
                seconds=time.perf_counter() - started,
                maps=maps or {},
                sampling=sampling,
                prompts=prompts_given,
                seeds=None if seed is None else (seed if isinstance(seed, list) else [seed]),
                model=str(getattr(pipe, "name_or_path", "") or type(pipe).__name__),
            )

    def _guided_noise(self, step: GuidedStep, sampling: SamplingDefaults, config: GuidanceConfig) -> torch.Tensor:
        """The classifier-free-guided noise prediction shifted by the objective's gradient.

        An image whose loss or gradient is not finite gets no update; with `skip_satisfied` a
        settled image keeps its layout (normalising would amplify a vanishing pull)."""
        noise_pred = classifier_free(step.noise_uncond, step.noise_text, sampling)
        grad = torch.where(per_image(finite_rows(step), step.grad), step.grad, torch.zeros_like(step.grad))
        if config.skip_satisfied:
            grad = grad * per_image(~step.value.settled, grad)
        if config.normalize_gradient:
            rms = grad.flatten(1).square().mean(dim=1).sqrt().clamp_min(1e-12)
            grad = grad / per_image(rms, grad)
        return noise_pred + config.eta * grad.to(noise_pred.dtype)


def _bar_disabled(pipe: Any) -> bool:
    """Honour `pipe.set_progress_bar_config(disable=True)`, as diffusers pipelines do."""
    return bool(getattr(pipe, "_progress_bar_config", {}).get("disable", False))


def compose(
    scene: SceneGraph | dict | str | Path | list,
    pipe: Any = None,
    *,
    seed: int | list[int] | None = None,
    num_inference_steps: int | None = None,
    guidance_scale: float | None = None,
    config: GuidanceConfig | None = None,
    **kwargs: Any,
) -> ComposeResult:
    """Parse (if needed), analyse, compile and sample with guidance.

    `pipe` is a diffusers pipeline, a `ScenePipeline`, an embedded model's name such as "shapes" or
    a model folder (loaded once, then kept); None uses the default embedded model. Other keyword
    arguments (ddim_eta, prompt_style, generator, ...) pass through to `ScenePipeline.__call__`.
    """
    if pipe is None or isinstance(pipe, (str, Path)):
        scene_pipe = _loaded_pipeline(pipe)
    elif isinstance(pipe, ScenePipeline):
        scene_pipe = pipe
    else:
        scene_pipe = ScenePipeline(pipe)
    return scene_pipe(
        scene,
        seed=seed,
        num_inference_steps=num_inference_steps,
        guidance_scale=guidance_scale,
        config=config,
        **kwargs,
    )


_LOADED: dict[str, ScenePipeline] = {}


def _loaded_pipeline(name_or_path: str | Path | None) -> ScenePipeline:
    key = str(name_or_path or DEFAULT_MODEL)
    if key not in _LOADED:
        _LOADED[key] = ScenePipeline.from_pretrained(key)
    return _LOADED[key]
