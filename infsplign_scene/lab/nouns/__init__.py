"""The embedded noun model: COCO objects and everyday nouns drawn from a colour emoji font."""
