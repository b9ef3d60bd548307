"""The pipeline families the guidance runs on, recognised from their components, and how each
turns prompts into the UNet's text conditioning."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .errors import InfsplignError

SD, SDXL = "stable-diffusion", "stable-diffusion-xl"
FAMILIES = (SD, SDXL)


def family_of(pipe: Any) -> str:
    """SD 1.x/2.x (one text encoder) or SDXL (a second text encoder and text-time embeddings);
    anything else is an `InfsplignError` naming the class and the supported families."""
    parts = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
    unet = getattr(pipe, "unet", None)
    if all(getattr(pipe, part, None) is not None for part in parts):
        if getattr(pipe, "text_encoder_2", None) is not None and unet.config.get("addition_embed_type") == "text_time":
            return SDXL
        if getattr(pipe, "text_encoder_2", None) is None and unet.config.get("addition_embed_type") is None:
            return SD
    raise InfsplignError(
        f"{type(pipe).__name__} is not a supported pipeline; supported: StableDiffusionPipeline (SD 1.x/2.x) "
        "and StableDiffusionXLPipeline (SDXL)"
    )


@dataclass
class TextConditioning:
    """What the UNet is conditioned on: text embeddings [B, T, D] and, for SDXL, the added
    conditions (pooled text embeddings [B, P] and time ids [B, 6]); the negative ones with CFG."""

    prompt_embeds: torch.Tensor
    negative_embeds: torch.Tensor | None
    added: dict[str, torch.Tensor] | None = None
    negative_added: dict[str, torch.Tensor] | None = None


def encode(
    pipe: Any, prompts: list[str], device: torch.device, cfg: bool, negative_prompt: Any, size: tuple[int, int]
) -> TextConditioning:
    """The pipeline's own prompt encoding (both encoders on SDXL), and SDXL's time ids as its
    pipeline computes them for an uncropped image of `size` (height, width)."""
    with torch.no_grad():  # else the text encoders' weights tie every step's output into one graph
        if family_of(pipe) == SD:
            embeds, negative = pipe.encode_prompt(prompts, device, 1, cfg, negative_prompt)
            return TextConditioning(embeds, negative if cfg else None)
        embeds, negative, pooled, negative_pooled = pipe.encode_prompt(
            prompt=prompts,
            device=device,
            num_images_per_prompt=1,
            do_classifier_free_guidance=cfg,
            negative_prompt=negative_prompt,
        )
    projection = pipe.text_encoder_2.config.projection_dim
    time_ids = pipe._get_add_time_ids(size, (0, 0), size, dtype=embeds.dtype, text_encoder_projection_dim=projection)
    time_ids = time_ids.to(device).repeat(len(prompts), 1)
    added = {"text_embeds": pooled, "time_ids": time_ids}
    negative_added = {"text_embeds": negative_pooled, "time_ids": time_ids} if cfg else None
    return TextConditioning(embeds, negative if cfg else None, added, negative_added)


def decode(pipe: Any, latents: torch.Tensor) -> torch.Tensor:
    """Latents -> pixels in [-1, 1] as the family's pipeline decodes them: SDXL's float16 VAE
    overflows, so when its config says `force_upcast` it decodes in float32 (and is put back)."""
    vae = pipe.vae
    upcast = family_of(pipe) == SDXL and vae.dtype == torch.float16 and vae.config.get("force_upcast", False)
    if upcast:
        vae.to(dtype=torch.float32)
    try:
        mean, std = vae.config.get("latents_mean"), vae.config.get("latents_std")
        latents = latents.to(vae.dtype)
        if mean is not None and std is not None:
            mean = torch.tensor(mean, device=latents.device, dtype=latents.dtype).view(1, -1, 1, 1)
            std = torch.tensor(std, device=latents.device, dtype=latents.dtype).view(1, -1, 1, 1)
            latents = latents * std / vae.config.scaling_factor + mean
        else:
            latents = latents / vae.config.scaling_factor
        return vae.decode(latents, return_dict=False)[0]
    finally:
        if upcast:
            vae.to(dtype=torch.float16)
