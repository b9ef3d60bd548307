"""Components of the embedded shape-scenes model, in Stable Diffusion format."""

from __future__ import annotations

from ...embedded import MODELS_DIR
from .scenes import COLORS, IMAGE_SIZE, SHAPES

WEIGHTS_DIR = MODELS_DIR / "shapes"
SPECIAL_TOKENS = ("<pad>", "<unk>", "<|startoftext|>", "<|endoftext|>")
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
    """A word-level tokenizer with CLIP-style start/end tokens, padded to 77 like SD's."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {word: i for i, word in enumerate(VOCABULARY)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>",
        special_tokens=[("<|startoftext|>", vocab["<|startoftext|>"]), ("<|endoftext|>", vocab["<|endoftext|>"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<|startoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<pad>",
        unk_token="<unk>",
        model_max_length=77,
    )


def build_text_encoder():
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=len(VOCABULARY),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
    )
    return CLIPTextModel(config)


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
    return {"num_train_timesteps": 1000, "beta_start": 0.0001, "beta_end": 0.02, "beta_schedule": "linear"}
