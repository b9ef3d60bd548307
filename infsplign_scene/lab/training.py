"""Train an embedded model of a synthetic world and save it as a Stable Diffusion folder.

Stages: (1) an AutoencoderKL on fresh random scenes (or the VAE of an existing model folder,
`--vae-from`); (2) the UNet and a small CLIP text encoder, jointly, on fresh scenes encoded by the
frozen VAE: epsilon loss with min-SNR weighting and extra weight on the objects' outlines, 10%
empty captions (for classifier-free guidance), EMA weights, a TokenCompose-style grounding loss
(each object word's attention mass inside its object's mask), which gives a small model the
localised cross-attention that real SD has from scale, and a linear probe that must tell the
object words apart from the text encoder's output (without it the encoder can let words collapse
onto one vector, and the model draws a random object whatever the prompt says).
Seeded; resumable from `OUT/checkpoint.pt`; writes a loss log to `OUT/train_log.jsonl`.
A world (`World`) supplies the scenes, the model's parts and its defaults.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..attention import trace


class SceneBatch(NamedTuple):
    """pixels [B,3,H,W] in [-1,1]; masks [B,K,H,W] (one per mention); token_object [B,77] (mention
    index, -1 = none); ids [B,77]; token_attribute [B,77] (probe class, -100 = none)."""

    pixels: torch.Tensor
    masks: torch.Tensor
    token_object: torch.Tensor
    ids: torch.Tensor
    token_attribute: torch.Tensor


@dataclass(frozen=True)
class World:
    name: str
    latent_size: int
    max_objects: int
    attribute_classes: int
    default_counts: tuple[float, ...]
    build_tokenizer: Callable
    build_text_encoder: Callable
    build_vae: Callable
    build_unet: Callable
    scheduler_config: Callable[[], dict]
    # (rng, size, tokenizer, dropout, counts) -> SceneBatch
    scene_batch: Callable[..., SceneBatch]
    # argparse defaults that differ from the common ones
    defaults: dict = field(default_factory=dict)
    # held-out scenes that set the VAE's scaling factor (1 / std of their latents)
    scaling_scenes: int = 512
    # the `preset.json` written beside the exported weights (None: none is written)
    preset: Callable[[], dict] | None = None
    # the model card (README.md) written beside the exported weights, given the UNet steps trained
    card: Callable[[int], str] | None = None


def world(name: str, model: Any, scene_batch: Callable[..., SceneBatch], **settings: Any) -> World:
    """A `World` whose parts are a model module's `build_tokenizer`, `build_text_encoder`,
    `build_vae`, `build_unet`, `scheduler_config` and `LATENT_SIZE`."""
    return World(
        name=name,
        latent_size=model.LATENT_SIZE,
        build_tokenizer=model.build_tokenizer,
        build_text_encoder=model.build_text_encoder,
        build_vae=model.build_vae,
        build_unet=model.build_unet,
        scheduler_config=model.scheduler_config,
        scene_batch=scene_batch,
        **settings,
    )


def parse_object_counts(text: str, max_objects: int) -> tuple[float, ...]:
    """'0.1,0.3,0.3,0.3' -> probabilities of 1..max_objects objects (they must sum to 1)."""
    try:
        probabilities = tuple(float(p) for p in text.split(","))
    except ValueError as error:
        raise SystemExit(f"--object-counts: {text!r} is not a comma-separated list of numbers") from error
    if len(probabilities) != max_objects or min(probabilities) < 0 or not math.isclose(sum(probabilities), 1.0):
        raise SystemExit(f"--object-counts needs {max_objects} non-negative probabilities summing to 1, got {text!r}")
    return probabilities


def grounding_loss(
    maps: dict[int, list[torch.Tensor]], masks: torch.Tensor, token_object: torch.Tensor
) -> torch.Tensor:
    """Mean over object tokens of 1 - (share of the token's attention inside its object's mask).

    maps: height -> list of [B,77,h,w]; masks: [B,K,H,W]; token_object: [B,77] (-1 = no object)."""
    valid = token_object >= 0
    if not valid.any():
        return masks.new_zeros(())
    losses = []
    gather_index = token_object.clamp_min(0)
    for height, layer_maps in maps.items():
        if height < 8:
            continue
        small = F.adaptive_avg_pool2d(masks, height)  # [B,K,h,h]
        token_masks = torch.gather(small, 1, gather_index[:, :, None, None].expand(-1, -1, height, height))
        for attention in layer_maps:
            inside = (attention * token_masks).sum((2, 3)) / attention.sum((2, 3)).clamp_min(1e-8)
            losses.append(((1 - inside) * valid).sum() / valid.sum())
    return torch.stack(losses).mean()


def edge_weights(masks: torch.Tensor, strength: float, latent_size: int) -> torch.Tensor:
    """Per-latent-pixel loss weights [B,1,h,w]: 1 + strength on the objects' outlines.

    masks: [B,K,H,W]. The outline (a two-pixel band at image resolution) is where similar objects
    differ; weighting it keeps the object words from being ignored next to the colours, which
    decide far more of the plain squared error."""
    dilated = F.max_pool2d(masks, 3, stride=1, padding=1)
    eroded = -F.max_pool2d(-masks, 3, stride=1, padding=1)
    band = (dilated - eroded).amax(1, keepdim=True)
    return 1 + strength * F.adaptive_avg_pool2d(band, latent_size)


def argument_parser(world: World) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m infsplign_scene.lab.{world.name}.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=Path(f"runs/{world.name}"), help="output folder")
    parser.add_argument("--vae-steps", type=int, default=800)
    parser.add_argument("--vae-batch-size", type=int, default=64)
    parser.add_argument("--unet-steps", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--grounding-weight", type=float, default=0.3)
    parser.add_argument("--ema-decay", type=float, default=0.999)
    parser.add_argument(
        "--attribute-weight",
        type=float,
        default=0.1,
        help="weight of a linear probe's cross-entropy that keeps the object words apart in the text encoder",
    )
    parser.add_argument("--edge-weight", type=float, default=3.0, help="extra denoising-loss weight on object outlines")
    start_from = parser.add_mutually_exclusive_group()
    start_from.add_argument(
        "--vae-from", type=Path, default=None, help="take the VAE of this SD-format folder and skip the VAE stage"
    )
    start_from.add_argument(
        "--init-from",
        type=Path,
        default=None,
        help="fine-tune: start the VAE, text encoder and UNet (and their EMA) from this SD-format folder, "
        "skipping the VAE stage; the optimiser and the attribute probe start fresh",
    )
    parser.add_argument(
        "--object-counts",
        type=str,
        default=",".join(str(p) for p in world.default_counts),
        help=f"probabilities of scenes with 1..{world.max_objects} objects, comma-separated",
    )
    parser.add_argument("--checkpoint-every", type=int, default=250, help="UNet steps between checkpoints")
    parser.add_argument(
        "--export-to",
        type=Path,
        default=None,
        help="write the checkpoint's EMA weights as an SD-format folder here and stop (a look at a model in training)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.set_defaults(**world.defaults)
    return parser


def train_vae(world: World, vae, rng, tokenizer, args, start: int, optimizer, log, save) -> None:
    vae.train()
    for step in tqdm(range(start, args.vae_steps), desc="vae", initial=start, total=args.vae_steps):
        pixels = world.scene_batch(rng, args.vae_batch_size, tokenizer).pixels
        posterior = vae.encode(pixels).latent_dist
        recon = vae.decode(posterior.sample()).sample
        kl = posterior.kl().mean() / (world.latent_size * world.latent_size * vae.config.latent_channels)
        loss = F.l1_loss(recon, pixels) + F.mse_loss(recon, pixels) + 1e-4 * kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % 50 == 0:
            log({"stage": "vae", "step": step, "loss": loss.item()})
        if (step + 1) % 250 == 0:
            save("vae", step + 1)


def train(world: World, argv: list[str] | None = None) -> None:
    args = argument_parser(world).parse_args(argv)
    counts = parse_object_counts(args.object_counts, world.max_objects)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    checkpoint_path = args.out / "checkpoint.pt"
    log_file = open(args.out / "train_log.jsonl", "a")  # noqa: SIM115 - open for the whole run

    def log(record: dict) -> None:
        record["time"] = round(time.time(), 1)
        log_file.write(json.dumps(record) + "\n")
        log_file.flush()

    tokenizer = world.build_tokenizer()
    vae, text_encoder, unet = world.build_vae(), world.build_text_encoder(), world.build_unet()
    state = {"stage": "vae", "step": 0, "scaling_factor": None}
    if args.vae_from is not None or args.init_from is not None:
        from diffusers import AutoencoderKL

        trained = AutoencoderKL.from_pretrained((args.init_from or args.vae_from) / "vae")
        vae.load_state_dict(trained.state_dict())  # into our own build: no foreign config keys
        state = {"stage": "unet", "step": 0, "scaling_factor": trained.config.scaling_factor}
    if args.init_from is not None:
        from diffusers import UNet2DConditionModel
        from transformers import CLIPTextModel

        unet.load_state_dict(UNet2DConditionModel.from_pretrained(args.init_from / "unet").state_dict())
        text_encoder.load_state_dict(CLIPTextModel.from_pretrained(args.init_from / "text_encoder").state_dict())
    attribute_probe = torch.nn.Linear(text_encoder.config.hidden_size, world.attribute_classes)
    ema = [p.detach().clone() for p in list(unet.parameters()) + list(text_encoder.parameters())]
    vae_optimizer = torch.optim.AdamW(vae.parameters(), lr=1e-3)
    unet_params = list(unet.parameters()) + list(text_encoder.parameters())
    optimizer = torch.optim.AdamW(unet_params + list(attribute_probe.parameters()), lr=args.lr, weight_decay=1e-2)
    rng = np.random.default_rng(args.seed)

    if checkpoint_path.exists():
        saved = torch.load(checkpoint_path, weights_only=False)
        vae.load_state_dict(saved["vae"])
        unet.load_state_dict(saved["unet"])
        text_encoder.load_state_dict(saved["text_encoder"])
        attribute_probe.load_state_dict(saved["attribute_probe"])
        vae_optimizer.load_state_dict(saved["vae_optimizer"])
        optimizer.load_state_dict(saved["optimizer"])
        for target, value in zip(ema, saved["ema"], strict=True):
            target.copy_(value)
        state = saved["state"]
        rng.bit_generator.state = saved["rng"]
        torch.set_rng_state(saved["torch_rng"])
        print(f"resumed at stage {state['stage']} step {state['step']}")
    if args.export_to is not None:
        if state["scaling_factor"] is None:
            raise SystemExit(f"{checkpoint_path} has no trained VAE yet: nothing to export")
        with torch.no_grad():
            for param, shadow in zip(unet_params, ema, strict=True):
                param.copy_(shadow)
        export(args.export_to, world, (vae, text_encoder, unet, tokenizer), state["scaling_factor"], state["step"])
        print(f"saved {args.export_to} (stage {state['stage']}, step {state['step']})")
        return

    def save(stage: str, step: int) -> None:
        state.update(stage=stage, step=step)
        temporary = checkpoint_path.with_suffix(".tmp")
        torch.save(
            {
                "vae": vae.state_dict(),
                "unet": unet.state_dict(),
                "text_encoder": text_encoder.state_dict(),
                "attribute_probe": attribute_probe.state_dict(),
                "vae_optimizer": vae_optimizer.state_dict(),
                "optimizer": optimizer.state_dict(),
                "ema": ema,
                "state": state,
                "rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
            },
            temporary,
        )
        temporary.replace(checkpoint_path)

    if state["stage"] == "vae":
        train_vae(world, vae, rng, tokenizer, args, state["step"], vae_optimizer, log, save)
        vae.eval()
        with torch.no_grad():
            pixels = world.scene_batch(np.random.default_rng(args.seed + 1), world.scaling_scenes, tokenizer).pixels
            latents = vae.encode(pixels).latent_dist.mean
            recon = vae.decode(latents).sample
        state["scaling_factor"] = float(1.0 / latents.std())
        log({"stage": "vae", "held_out_l1": F.l1_loss(recon, pixels).item() / 2, "scaling": state["scaling_factor"]})
        save("unet", 0)

    if state["stage"] == "unet" and state["step"] < args.unet_steps:
        parts = (vae, text_encoder, unet, tokenizer, attribute_probe)
        train_unet(world, args, counts, parts, ema, optimizer, rng, state, log, save)
    save("done", max(state["step"], args.unet_steps))
    with torch.no_grad():
        for param, shadow in zip(unet_params, ema, strict=True):
            param.copy_(shadow)
    export(args.out / "model", world, (vae, text_encoder, unet, tokenizer), state["scaling_factor"], state["step"])
    print(f"saved {args.out / 'model'}")


def train_unet(world: World, args, counts, parts, ema, optimizer, rng, state: dict, log, save) -> None:
    vae, text_encoder, unet, tokenizer, attribute_probe = parts
    vae.eval().requires_grad_(False)
    scaling = state["scaling_factor"]
    config = world.scheduler_config()
    betas = torch.linspace(config["beta_start"], config["beta_end"], config["num_train_timesteps"])
    alphas_cumprod = torch.cumprod(1 - betas, dim=0)
    snr = alphas_cumprod / (1 - alphas_cumprod)
    unet_params = list(unet.parameters()) + list(text_encoder.parameters())
    unet.train()
    text_encoder.train()
    warmup = 200
    latent = (world.latent_size, world.latent_size)
    with trace(unet, latent, layers="all") as store:
        store.active = True
        for step in tqdm(
            range(state["step"], args.unet_steps), desc="unet", initial=state["step"], total=args.unet_steps
        ):
            lr = args.lr * min(1.0, (step + 1) / warmup) * (0.5 * (1 + math.cos(math.pi * step / args.unet_steps)))
            for group in optimizer.param_groups:
                group["lr"] = lr
            pixels, masks, token_object, ids, token_attribute = world.scene_batch(
                rng, args.batch_size, tokenizer, counts=counts
            )
            with torch.no_grad():
                latents = vae.encode(pixels).latent_dist.sample() * scaling
            noise = torch.randn_like(latents)
            timesteps = torch.randint(0, len(alphas_cumprod), (latents.shape[0],))
            a = alphas_cumprod[timesteps].sqrt()[:, None, None, None]
            s = (1 - alphas_cumprod[timesteps]).sqrt()[:, None, None, None]
            store.reset()
            text = text_encoder(ids)[0]
            prediction = unet(a * latents + s * noise, timesteps, text).sample
            weights = snr[timesteps].clamp(max=5.0) / snr[timesteps]  # min-SNR-5 for epsilon prediction
            squared_error = (prediction - noise).pow(2) * edge_weights(masks, args.edge_weight, world.latent_size)
            denoise = (weights * squared_error.mean((1, 2, 3))).mean()
            ground = grounding_loss(store.maps, masks, token_object)
            attribute = (
                F.cross_entropy(attribute_probe(text).flatten(0, 1), token_attribute.flatten())
                if (token_attribute >= 0).any()
                else text.new_zeros(())
            )
            loss = denoise + args.grounding_weight * ground + args.attribute_weight * attribute
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(unet_params, 1.0)
            optimizer.step()
            with torch.no_grad():
                decay = min(args.ema_decay, (1 + step) / (10 + step))
                for shadow, param in zip(ema, unet_params, strict=True):
                    shadow.lerp_(param.detach(), 1 - decay)
            if step % 25 == 0:
                log(
                    {
                        "stage": "unet",
                        "step": step,
                        "denoise": denoise.item(),
                        "grounding": ground.item(),
                        "attribute": attribute.item(),
                        "lr": lr,
                    }
                )
            if (step + 1) % args.checkpoint_every == 0:
                save("unet", step + 1)
    state["step"] = args.unet_steps


def export(folder: Path, world: World, parts: tuple, scaling: float, unet_steps: int) -> None:
    """Write a `StableDiffusionPipeline.from_pretrained`-loadable folder (safetensors) of the parts
    (vae, text_encoder, unet, tokenizer), with the world's preset and model card."""
    vae, text_encoder, unet, tokenizer = parts
    from diffusers import DDIMScheduler

    from .testing import assemble_pipeline

    vae.register_to_config(scaling_factor=scaling)
    scheduler = DDIMScheduler(
        **world.scheduler_config(),
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        timestep_spacing="trailing",
    )
    assemble_pipeline(vae, text_encoder, tokenizer, unet, scheduler).save_pretrained(folder, safe_serialization=True)
    if world.preset is not None:
        (folder / "preset.json").write_text(json.dumps(world.preset(), indent=2, ensure_ascii=False) + "\n")
    if world.card is not None:
        (folder / "README.md").write_text(world.card(unet_steps))
