"""Detectors behind one protocol: where each object of a graph is in an image, as a box with the
detector's confidence.

Relations between the boxes are judged in `relations` (`holds`, and the public benchmarks' rules).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np

from ..errors import InfsplignError
from ..relations import Box, iou
from ..scene import SceneGraph


class Found(NamedTuple):
    box: Box  # x0, y0, x1, y1 in [0, 1], y down
    score: float  # the detector's confidence; 1 for an exact detector
    instances: int = 1  # how many times the object is drawn (more than its count: a duplicate)


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
            instances = found.instances.get(obj.name.lower().split()[0], 1)
            located[obj.id] = Found(detection.box, 1.0, instances) if detection is not None else None
        return located


def exact_detector(family: str) -> Detector:
    """The exact detector of an embedded model's family (`shapes`, `nouns`)."""
    if family == "nouns":
        from .nouns.detector import NounDetector

        return NounDetector()
    if family == "shapes":
        return ShapesDetector()
    raise InfsplignError(f"no exact detector for a {family} model; name a detector (--detector owlvit ...)")


OPEN_VOCABULARY = ("owlvit", "owlv2", "grounding-dino")


class ZeroShotDetector:
    """Open-vocabulary detection from a local folder of weights (transformers, no network):
    OWL-ViT (as VISOR), OWLv2 or Grounding DINO, whichever the folder holds.

    Each object is queried by name ("a photo of a {name}" for OWL models, as VISOR does; the name
    itself for Grounding DINO); its most confident box above `threshold` locates it. Load with
    `ZeroShotDetector("path/to/owlvit-base-patch32")`."""

    def __init__(self, path: str | Path, threshold: float = 0.1, device: str = "cpu", text_threshold: float = 0.25):
        from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

        try:
            self.processor = AutoProcessor.from_pretrained(str(path), local_files_only=True)
            model = AutoModelForZeroShotObjectDetection.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError) as error:
            raise InfsplignError(f"cannot load an open-vocabulary detector from {str(path)!r}: {error}") from None
        self.kind = model.config.model_type.replace("_", "-")
        if self.kind not in OPEN_VOCABULARY:
            raise InfsplignError(
                f"{str(path)!r} holds a {self.kind} model; expected one of {', '.join(OPEN_VOCABULARY)}"
            )
        self.model = model.to(device).eval()
        self.threshold, self.text_threshold, self.device = threshold, text_threshold, device

    def locate(self, image: Any, graph: SceneGraph) -> dict[str, Found | None]:
        import torch

        grounding = self.kind == "grounding-dino"
        queries = [obj.name.lower() if grounding else f"a photo of a {obj.name}" for obj in graph.objects]
        inputs = self.processor(text=[queries], images=image, return_tensors="pt").to(self.device)
        with torch.no_grad():
            outputs = self.model(**inputs)
        width, height = image.size
        options: dict[str, Any] = {
            "threshold": self.threshold,
            "target_sizes": [(height, width)],
            "text_labels": [queries],
        }
        if grounding:
            options.update(input_ids=inputs["input_ids"], text_threshold=self.text_threshold)
        found = self.processor.post_process_grounded_object_detection(outputs, **options)[0]
        boxes: dict[int, list[tuple[float, Box]]] = {}
        detections = zip(found["scores"].tolist(), found["text_labels"], found["boxes"].tolist(), strict=True)
        for score, label, (x0, y0, x1, y1) in detections:
            index = _query_of(label, queries)
            if index is not None:
                scaled = (x0 / width, y0 / height, x1 / width, y1 / height)
                boxes.setdefault(index, []).append((score, tuple(min(max(c, 0.0), 1.0) for c in scaled)))
        located: dict[str, Found | None] = {obj.id: None for obj in graph.objects}
        for index, scored in boxes.items():
            kept = non_maximum_suppression(scored)
            located[graph.objects[index].id] = Found(kept[0][1], kept[0][0], len(kept))
        return located


def non_maximum_suppression(scored: list[tuple[float, Box]], overlap: float = 0.5) -> list[tuple[float, Box]]:
    """The boxes left after greedy suppression of any box overlapping a more confident one by IoU
    `overlap` or more, most confident first: the instances a detector found."""
    kept: list[tuple[float, Box]] = []
    for score, box in sorted(scored, key=lambda item: -item[0]):
        if all(iou(box, other) < overlap for _, other in kept):
            kept.append((score, box))
    return kept


def _query_of(label: str, queries: list[str]) -> int | None:
    """Which query a detection's label answers: the query itself, else the one sharing the most
    words with it (Grounding DINO labels a box with the text words it matched: "circle"), the
    first on a tie; None when no word is shared."""
    if label in queries:
        return queries.index(label)
    words = set(label.replace(".", " ").split())
    shared = [len(words & set(query.split())) for query in queries]
    return shared.index(max(shared)) if shared and max(shared) > 0 else None
