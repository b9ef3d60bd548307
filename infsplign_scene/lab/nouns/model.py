"""Components of the embedded noun model, in Stable Diffusion format.

64x64 RGB images, a VAE with factor 4 (16x16x8 latents), a word-level
tokenizer whose vocabulary (`vocabulary.txt`) holds every class name, synonym and plural and every
word of the relation lexicon, so that spatial prompts can be written at all.
"""

from __future__ import annotations

from pathlib import Path

from ..parts import SCHEDULER_CONFIG, SPECIAL_TOKENS, clip_text_encoder, word_level_tokenizer
from .glyphs import noun_classes, plural
from .scenes import IMAGE_SIZE, NUMBER_WORDS

VOCABULARY_FILE = Path(__file__).with_name("vocabulary.txt")
LATENT_SIZE = IMAGE_SIZE // 4
# 8 latent channels (SD has 4): a 16x16 latent of a 64x64 image keeps the glyphs' detail and colours
# only with the larger latent (held-out reconstruction error 0.036 with 4 after 1,000 steps).
LATENT_CHANNELS = 8


def noun_words() -> list[str]:
    """Every word of every class name, synonym and plural, in first-seen order."""
    words: dict[str, None] = {}
    for noun in noun_classes():
        for name in noun.names:
            for phrase in (name, plural(name)):
                words.update(dict.fromkeys(phrase.split()))
    return list(words)


def lexicon_words() -> list[str]:
    """The words of the relation lexicon, split as the tokenizer splits them."""
    import json

    from tokenizers import pre_tokenizers

    from ...lexicon import grammar_dir

    data = json.loads((grammar_dir() / "lexicon.json").read_text(encoding="utf-8"))
    phrases: list[str] = []
    for key in ("relations", "pronoun_relations"):
        phrases += [p for group in data[key].values() for p in group]
    for key in ("between", "symmetric_suffixes", "lead_ins", "verbs", "relative_pronouns", "pronouns", "articles"):
        phrases += data[key]
    phrases += list(data["counts"]) + data["clause_separators"] + ["the", "!", "?", "'", "-"]
    splitter = pre_tokenizers.Whitespace()
    words: dict[str, None] = {}
    for phrase in phrases:
        words.update(dict.fromkeys(piece for piece, _ in splitter.pre_tokenize_str(phrase.lower())))
    return list(words)


def write_vocabulary() -> None:
    """Write `vocabulary.txt` once; the text encoder's embedding table is sized by it."""
    words = dict.fromkeys([*SPECIAL_TOKENS, "a", "an", "and", *NUMBER_WORDS.values(), *noun_words(), *lexicon_words()])
    VOCABULARY_FILE.write_text("\n".join(words) + "\n", encoding="utf-8")


def vocabulary() -> list[str]:
    return VOCABULARY_FILE.read_text(encoding="utf-8").split("\n")[:-1]


def build_tokenizer():
    return word_level_tokenizer(vocabulary())


def build_text_encoder():
    return clip_text_encoder(len(vocabulary()), width=128, layers=3)


def build_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(32, 64, 64),
        layers_per_block=1,
        latent_channels=LATENT_CHANNELS,
        norm_num_groups=16,
        sample_size=IMAGE_SIZE,
        mid_block_add_attention=False,
    )


def build_unet():
    """Cross-attention on the 16x16 and 8x8 levels (down and up), as in the shapes model: the
    decoder's coarse level is 8x8 and its middle 16x16."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=LATENT_SIZE,
        in_channels=LATENT_CHANNELS,
        out_channels=LATENT_CHANNELS,
        layers_per_block=1,
        block_out_channels=(64, 128, 128),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        mid_block_type="UNetMidBlock2D",
        cross_attention_dim=128,
        attention_head_dim=8,
        norm_num_groups=16,
    )


def scheduler_config() -> dict:
    return dict(SCHEDULER_CONFIG)
