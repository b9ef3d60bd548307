"""Components of the embedded shape-scenes model, in Stable Diffusion format."""

from __future__ import annotations

from ...embedded import MODELS_DIR
from ..parts import SCHEDULER_CONFIG, SPECIAL_TOKENS, clip_text_encoder, word_level_tokenizer
from .scenes import COLORS, IMAGE_SIZE, SHAPES

WEIGHTS_DIR = MODELS_DIR / "shapes"
# Words the prompts may use. Training captions use only articles, colours, shapes and "and";
# the spatial words are known to the tokenizer so that spatial prompts can be written at all.
SPATIAL_WORDS = [
    "left",
    "right",
    "of",
    "to",
    "the",
    "above",
    "below",
    "near",
    "next",
    "on",
    "top",
    "under",
    "beneath",
    "beside",
    "over",
    "at",
    "side",
    "by",
    "close",
    "is",
    "are",
    "there",
    "with",
    "its",
    "it",
    "which",
    "that",
    "in",
    "middle",
    "between",
    "photo",
    "image",
    "picture",
    "scene",
]
VOCABULARY: tuple[str, ...] = (
    SPECIAL_TOKENS
    + ("a", "an", "and", ",", ".", ";")
    + tuple(COLORS)
    + SHAPES
    + tuple(f"{shape}s" for shape in SHAPES)
    + ("one", "two", "three", "four")
    + tuple(SPATIAL_WORDS)
)
LATENT_SIZE = IMAGE_SIZE // 2


def build_tokenizer():
    return word_level_tokenizer(VOCABULARY)


def build_text_encoder():
    return clip_text_encoder(len(VOCABULARY), width=64, layers=2)


def build_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(32, 64),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=16,
        sample_size=IMAGE_SIZE,
        mid_block_add_attention=False,
    )


def build_unet():
    """Cross-attention on the 16x16 and 8x8 levels (down and up); the 4x4 level and the mid block
    carry no decoder cross-attention, so the decoder's coarse level is 8x8 and its middle 16x16."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=LATENT_SIZE,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64, 64),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        mid_block_type="UNetMidBlock2D",
        cross_attention_dim=64,
        attention_head_dim=4,
        norm_num_groups=16,
    )


def scheduler_config() -> dict:
    return dict(SCHEDULER_CONFIG)
