"""Train the embedded shape-scenes model and save it as a Stable Diffusion folder.

    python -m infsplign_scene.lab.shapes.train --out runs/shapes [--vae-steps 800 --unet-steps 5000]

32x32x3 images, 16x16x4 latents. See `infsplign_scene.lab.training` for the stages and losses;
this module supplies the scenes. The attribute probe here tells every colour and shape word apart
(without it the encoder let the shape words collapse onto one vector and the model drew a random
shape whatever the prompt said).
"""

from __future__ import annotations

import numpy as np
import torch

from ..training import SceneBatch, train, world
from . import model
from .scenes import (
    COLORS,
    DEFAULT_OBJECT_COUNTS,
    IMAGE_SIZE,
    MAX_OBJECTS,
    SHAPES,
    caption,
    render,
    sample_count,
    sample_objects,
)

# the attribute probe's classes: each colour, then each shape
ATTRIBUTE_CLASS = {word: i for i, word in enumerate([*COLORS, *SHAPES])}


def scene_batch(
    rng: np.random.Generator, size: int, tokenizer, dropout: float = 0.1, counts: tuple[float, ...] | None = None
) -> SceneBatch:
    """Fresh scenes (`SceneBatch`); a token's attribute class is its colour's index, or
    len(COLORS) + its shape's index."""
    images = np.empty((size, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    index_maps = np.empty((size, IMAGE_SIZE, IMAGE_SIZE), dtype=np.int8)
    token_object = np.full((size, 77), -1, dtype=np.int64)
    token_attribute = np.full((size, 77), -100, dtype=np.int64)
    captions = []
    for b in range(size):
        objects = sample_objects(rng, sample_count(rng, counts))
        image, index = render(objects)
        if rng.random() < 0.5:  # mirror: captions carry no left/right, so this is free data
            image, index = image[:, ::-1], index[:, ::-1]
        images[b], index_maps[b] = image, index
        if rng.random() < dropout:
            captions.append("")
            continue
        text, order = caption(objects, rng)
        captions.append(text)
        for mention, object_index in enumerate(order):
            # "<start> a red circle and a blue square": mention j's colour and shape are tokens 2+4j, 3+4j
            token_object[b, 2 + 4 * mention : 4 + 4 * mention] = object_index
            token_attribute[b, 2 + 4 * mention] = ATTRIBUTE_CLASS[objects[object_index].color]
            token_attribute[b, 3 + 4 * mention] = ATTRIBUTE_CLASS[objects[object_index].shape]
    ids = tokenizer(captions, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    pixels = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    index_tensor = torch.from_numpy(index_maps.astype(np.int64))
    masks = torch.stack([(index_tensor == k) for k in range(MAX_OBJECTS)], dim=1).float()
    return SceneBatch(pixels, masks, torch.from_numpy(token_object), ids, torch.from_numpy(token_attribute))


WORLD = world(
    "shapes",
    model,
    scene_batch,
    max_objects=MAX_OBJECTS,
    attribute_classes=len(ATTRIBUTE_CLASS),
    default_counts=DEFAULT_OBJECT_COUNTS,
)


def main(argv: list[str] | None = None) -> None:
    train(WORLD, argv)


if __name__ == "__main__":
    main()
