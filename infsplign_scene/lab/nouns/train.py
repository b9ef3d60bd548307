"""Train the embedded noun model and save it as a Stable Diffusion folder.

    python -m infsplign_scene.lab.nouns.train --out runs/nouns --threads 1

See `infsplign_scene.lab.training` for the stages and losses; this module supplies the scenes.
"""

from __future__ import annotations

import numpy as np
import torch

from ..training import SceneBatch, train, world
from . import model
from .glyphs import font_description, noun_classes
from .scenes import DEFAULT_OBJECT_COUNTS, IMAGE_SIZE, MAX_OBJECTS, caption, sample_scene


def scene_batch(
    rng: np.random.Generator, size: int, tokenizer, dropout: float = 0.1, counts: tuple[float, ...] | None = None
) -> SceneBatch:
    """A batch of fresh scenes; a mention's mask is the union of the objects it names, and every
    word of its noun maps to it (and to the noun's class for the probe)."""
    images = np.empty((size, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    masks = np.zeros((size, MAX_OBJECTS, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    token_object = np.full((size, 77), -1, dtype=np.int64)
    token_attribute = np.full((size, 77), -100, dtype=np.int64)
    captions = []
    for b in range(size):
        image, index, _, phrases = sample_scene(rng, counts)
        images[b] = image
        for m, phrase in enumerate(phrases):
            masks[b, m] = np.isin(index, phrase.objects)
        if rng.random() < dropout:
            captions.append("")
            continue
        captions.append(caption(phrases))
        position = 1  # after the start token; every caption word is one token
        for m, phrase in enumerate(phrases):
            first_noun = position + len(phrase.words) - phrase.noun_words
            token_object[b, first_noun : position + len(phrase.words)] = m
            token_attribute[b, first_noun : position + len(phrase.words)] = phrase.noun.index
            position += len(phrase.words) + 1  # the "and" after it
    ids = tokenizer(captions, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    pixels = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    return SceneBatch(
        pixels, torch.from_numpy(masks), torch.from_numpy(token_object), ids, torch.from_numpy(token_attribute)
    )


def preset() -> dict:
    """The noun model's preset: the shapes model's sampling and guidance settings (chosen by its
    sweeps; not yet swept for this model) and the nouns it knows."""
    nouns = sorted({form for noun in noun_classes() for form in (noun.name, *noun.synonyms)})
    return {
        "family": "nouns",
        "about": "The embedded noun model's defaults: the shapes model's settings; a sweep on this model found "
        "none measurably better (docs/embedded-models.md).",
        "nouns": nouns,
        "guidance": {
            "eta": 0.12,
            "margin": 0.3,
            "lambda_presence": 0.1,
            "include_attributes": True,
            "normalize_gradient": True,
            "skip_satisfied": True,
            "cfg_forward": "split",
            "split_variance": 0.02,
        },
        "sampling": {
            "num_inference_steps": 40,
            "guidance_scale": 3.0,
            "ddim_eta": 1.0,
            "prompt_style": "objects",
            "cpu_threads": 1,
        },
    }


def card(unet_steps: int) -> str:
    """The model card written beside the weights: what it is, its data's font and licence."""
    classes = noun_classes()
    return f"""# The embedded noun model

A small Stable Diffusion-format text-to-image model (64x64 RGB; VAE factor 4, 8 latent channels;
word-level CLIP text encoder; UNet with cross-attention at 16x16 and 8x8) trained on
synthetic scenes of 1-4 objects of {len(classes)} classes ({sum(c.coco for c in classes)} of them COCO
classes), captioned with the objects' names only, never their relations. Part of infsplign-scene;
how it was trained and what it measures: docs/embedded-models.md.

- Training data: glyphs of {font_description()}; the class list with each glyph is
  `infsplign_scene/lab/nouns/classes.json`. The font is not part of these weights.
- UNet steps of the training run that wrote these weights (a fine-tune counts its own): {unet_steps}.
- Rebuild: `python -m infsplign_scene.lab.nouns.train --out checkpoints/nouns --threads 1`, then
  `--export-to infsplign_scene/models/nouns` (docs/embedded-models.md).
"""


WORLD = world(
    "nouns",
    model,
    scene_batch,
    max_objects=MAX_OBJECTS,
    attribute_classes=len(noun_classes()),
    default_counts=DEFAULT_OBJECT_COUNTS,
    defaults={"edge_weight": 1.0, "vae_batch_size": 32, "vae_steps": 2500, "unet_steps": 8000, "batch_size": 32},
    scaling_scenes=256,
    preset=preset,
    card=card,
)


def main(argv: list[str] | None = None) -> None:
    train(WORLD, argv)


if __name__ == "__main__":
    main()
