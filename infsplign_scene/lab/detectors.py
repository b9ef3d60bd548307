"""Detectors behind one protocol: where each object of a graph is in an image, as a box with the
detector's confidence.

Relations between the boxes are judged in `relations` (`holds`, and the public benchmarks' rules).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np

from ..errors import InfsplignError
from ..relations import Box
from ..scene import SceneGraph


class Found(NamedTuple):
    box: Box  # x0, y0, x1, y1 in [0, 1], y down
    score: float  # the detector's confidence; 1 for an exact detector


class Detector(Protocol):
    def locate(self, image: Any, graph: SceneGraph) -> dict[str, Found | None]:
        """Where each object of the graph is, or None when absent."""


class ShapesDetector:
    """The exact detector of the embedded model (objects named "<colour> <shape>"). Colours are
    distinct within an image, so an object is located by its colour alone, like the `_color`
    metrics of the shapes benchmark (docs/embedded-models.md)."""

    def locate(self, image: Any, graph: SceneGraph) -> dict[str, Found | None]:
        from .shapes.detector import detect

        found = detect(np.asarray(image))
        located = {}
        for obj in graph.objects:
            detection = found.find(obj.name.lower().split()[0])
            located[obj.id] = Found(detection.box, 1.0) if detection is not None else None
        return located


class OwlVitDetector:
    """Open-vocabulary detection with OWL-ViT (as in VISOR) from a local folder of weights.

    Each object is queried as "a photo of a {name}"; its best box above `threshold` locates it.
    Load with `OwlVitDetector("path/to/owlvit-base-patch32")` (no network)."""

    def __init__(self, path: str | Path, threshold: float = 0.1, device: str = "cpu") -> None:
        from transformers import OwlViTForObjectDetection, OwlViTProcessor

        try:
            self.processor = OwlViTProcessor.from_pretrained(str(path), local_files_only=True)
            self.model = OwlViTForObjectDetection.from_pretrained(str(path), local_files_only=True).to(device).eval()
        except (OSError, ValueError) as error:
            raise InfsplignError(f"cannot load OWL-ViT from {path!r}: {error}") from None
        self.threshold = threshold
        self.device = device

    def locate(self, image: Any, graph: SceneGraph) -> dict[str, Found | None]:
        import torch

        queries = [f"a photo of a {obj.name}" for obj in graph.objects]
        inputs = self.processor(text=[queries], images=image, return_tensors="pt").to(self.device)
        with torch.no_grad():
            outputs = self.model(**inputs)
        width, height = image.size
        found = self.processor.image_processor.post_process_object_detection(
            outputs=outputs, threshold=self.threshold, target_sizes=[(height, width)]
        )[0]
        located: dict[str, Found | None] = {obj.id: None for obj in graph.objects}
        best: dict[int, float] = {}
        for score, label, box in zip(
            found["scores"].tolist(), found["labels"].tolist(), found["boxes"].tolist(), strict=True
        ):
            if score > best.get(label, -1.0):
                best[label] = score
                x0, y0, x1, y1 = box
                scaled = (x0 / width, y0 / height, x1 / width, y1 / height)
                located[graph.objects[label].id] = Found(tuple(min(max(c, 0.0), 1.0) for c in scaled), score)
        return located
