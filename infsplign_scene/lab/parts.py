"""Parts every embedded world builds alike: a word-level tokenizer, a small CLIP text encoder,
and the DDPM noise schedule of training."""

from __future__ import annotations

SPECIAL_TOKENS = ("<pad>", "<unk>", "<|startoftext|>", "<|endoftext|>")
# The schedule a model is trained with (DDIM with "trailing" spacing samples from it).
SCHEDULER_CONFIG = {"num_train_timesteps": 1000, "beta_start": 0.0001, "beta_end": 0.02, "beta_schedule": "linear"}


def word_level_tokenizer(vocabulary: list[str] | tuple[str, ...]):
    """A word-level tokenizer over `vocabulary` (which begins with SPECIAL_TOKENS), with CLIP-style
    start and end tokens, padded to 77 like SD's."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {word: i for i, word in enumerate(vocabulary)}
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


def clip_text_encoder(vocabulary_size: int, width: int, layers: int):
    """A small `CLIPTextModel` (4 heads, 2x wide MLP) whose special ids are SPECIAL_TOKENS' positions."""
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=vocabulary_size,
        hidden_size=width,
        intermediate_size=2 * width,
        num_hidden_layers=layers,
        num_attention_heads=4,
        max_position_embeddings=77,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
    )
    return CLIPTextModel(config)
