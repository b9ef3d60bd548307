"""A detector for noun scenes: objects as foreground blobs against a smooth background, each
classified by a small CNN trained on rendered scenes.

    python -m infsplign_scene.lab.nouns.detector --out infsplign_scene/lab/nouns/detector.safetensors

1. The background is a plane per colour channel, fitted to the image's border (robustly: border
   pixels far from the fit are refitted without); foreground is what differs from it by more
   than `FOREGROUND_DISTANCE`; each connected blob of at least `MIN_AREA` pixels is an object's box.
2. A square crop around each box, resized to 32x32, goes to the classifier: its class and
   probability. Trained on the crops that step 1 cuts from rendered scenes (matched to the drawn
   objects), with blur and noise, so that it sees what the segmentation gives it.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage, optimize
from torch import nn

from ...relations import iou
from ...scene import SceneGraph, SceneObject
from ..detectors import Found
from .glyphs import noun_classes, plural
from .scenes import sample_scene

WEIGHTS = Path(__file__).with_name("detector.safetensors")
FOREGROUND_DISTANCE = 15.0  # RGB distance from the fitted background
MIN_AREA = 20  # pixels
CROP = 32


@dataclass(frozen=True)
class NounDetection:
    noun: int  # class index (noun_classes())
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels
    probability: float


def background(image: np.ndarray) -> np.ndarray:
    """A plane per channel fitted to the two-pixel border: float32 [H, W, 3]."""
    pixels = image.astype(np.float32)
    height, width = pixels.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width]
    border = np.zeros((height, width), dtype=bool)
    border[:2], border[-2:], border[:, :2], border[:, -2:] = True, True, True, True
    design = np.stack([np.ones(border.sum()), xs[border], ys[border]], axis=1)
    values, chosen = pixels[border], np.ones(border.sum(), dtype=bool)
    for _ in range(2):  # refit without the border pixels an object covers
        coefficients, *_ = np.linalg.lstsq(design[chosen], values[chosen], rcond=None)
        residual = np.linalg.norm(values - design @ coefficients, axis=-1)
        chosen = residual < max(10.0, float(np.percentile(residual, 70)))
    return coefficients[0] + coefficients[1] * xs[..., None] + coefficients[2] * ys[..., None]


def segment(image: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Boxes (x0, y0, x1, y1, pixels, end exclusive) of the foreground blobs."""
    mask = np.linalg.norm(image.astype(np.float32) - background(image), axis=-1) > FOREGROUND_DISTANCE
    mask = ndimage.binary_fill_holes(mask)
    labels, _ = ndimage.label(mask, structure=np.ones((3, 3)))
    boxes = []
    for index, region in enumerate(ndimage.find_objects(labels), start=1):
        blob = labels[region] == index
        if blob.sum() >= MIN_AREA:
            ys, xs = np.nonzero(blob)
            x0, y0 = region[1].start, region[0].start
            boxes.append((x0 + int(xs.min()), y0 + int(ys.min()), x0 + int(xs.max()) + 1, y0 + int(ys.max()) + 1))
    return boxes


def crop(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """A square around the box (edge-padded), resized to CROP x CROP: float32 [3, CROP, CROP] in 0-1."""
    from PIL import Image

    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) + 2
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
    padded = np.pad(image, ((side, side), (side, side), (0, 0)), mode="edge")
    square = padded[top + side : top + 2 * side, left + side : left + 2 * side]
    resized = Image.fromarray(square.astype(np.uint8)).resize((CROP, CROP), Image.BILINEAR)
    return np.asarray(resized, dtype=np.float32).transpose(2, 0, 1) / 255.0


def classifier(classes: int) -> nn.Module:
    def block(inputs: int, outputs: int) -> list[nn.Module]:
        return [nn.Conv2d(inputs, outputs, 3, padding=1), nn.BatchNorm2d(outputs), nn.ReLU(), nn.MaxPool2d(2)]

    return nn.Sequential(*block(3, 32), *block(32, 64), *block(64, 128), nn.Flatten(), nn.Linear(128 * 16, classes))


def through_vae(vae: nn.Module, images: list[np.ndarray]) -> list[np.ndarray]:
    """Images as the model's VAE gives them back (encoded and decoded): what generated images look like."""
    pixels = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        decoded = vae.decode(vae.encode(pixels).latent_dist.mean).sample
    return list(((decoded.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy())


def labelled_crops(
    rng: np.random.Generator, scenes: int, vae: nn.Module | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Crops that the segmentation cuts from rendered scenes, labelled by the object they cover
    (IoU >= 0.5), with blur and noise; with a `vae`, half of the scenes pass through it first.
    Returns [N, 3, CROP, CROP] and [N]."""
    crops, labels = [], []
    rendered = [sample_scene(rng) for _ in range(scenes)]
    if vae is not None:
        chosen = [i for i in range(scenes) if rng.random() < 0.5]
        for start in range(0, len(chosen), 64):
            batch = chosen[start : start + 64]
            for i, image in zip(batch, through_vae(vae, [rendered[i][0] for i in batch]), strict=True):
                rendered[i] = (image, *rendered[i][1:])
    for image, _, objects, _ in rendered:
        if rng.random() < 0.5:
            image = ndimage.gaussian_filter(image.astype(np.float32), sigma=(rng.uniform(0.3, 1.0),) * 2 + (0,))
        image = np.clip(image.astype(np.float32) + rng.normal(0, rng.uniform(0, 6), image.shape), 0, 255)
        for box in segment(image):
            match = max(objects, key=lambda o: iou(o.box, box))
            if iou(match.box, box) >= 0.5:
                crops.append(crop(image, box))
                labels.append(match.noun.index)
    return np.stack(crops), np.asarray(labels)


def load_vae(path: Path) -> nn.Module:
    """The noun model's VAE from a training checkpoint (.pt) or a model folder."""
    from .model import build_vae

    vae = build_vae()
    if path.suffix == ".pt":
        vae.load_state_dict(torch.load(path, weights_only=False)["vae"])
    else:
        from diffusers import AutoencoderKL

        vae.load_state_dict(AutoencoderKL.from_pretrained(path / "vae").state_dict())
    return vae.eval()


def train(out: Path, scenes: int = 12000, epochs: int = 8, seed: int = 0, vae: nn.Module | None = None) -> None:
    from safetensors.torch import save_file
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    crops, labels = labelled_crops(rng, scenes, vae)
    model = classifier(len(noun_classes()))
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    inputs, targets = torch.from_numpy(crops), torch.from_numpy(labels)
    steps = epochs * ((len(inputs) + 255) // 256)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps)
    model.train()
    for _ in tqdm(range(epochs), desc="detector"):
        order = torch.randperm(len(inputs))
        for start in range(0, len(inputs), 256):
            batch = order[start : start + 256]
            flipped = torch.where(torch.rand(len(batch), 1, 1, 1) < 0.5, inputs[batch].flip(-1), inputs[batch])
            loss = nn.functional.cross_entropy(model(flipped), targets[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out))


@cache
def _loaded(path: str) -> nn.Module:
    from safetensors.torch import load_file

    model = classifier(len(noun_classes()))
    model.load_state_dict(load_file(path))
    return model.eval()


def classify(image: Any, weights: Path = WEIGHTS) -> tuple[list[tuple[int, int, int, int]], torch.Tensor]:
    """The foreground blobs' boxes of an image (uint8 [H, W, 3] or PIL) and their class
    probabilities [blobs, classes]."""
    pixels = np.asarray(image)[..., :3]
    boxes = segment(pixels)
    if not boxes:
        return [], torch.zeros(0, len(noun_classes()))
    batch = torch.from_numpy(np.stack([crop(pixels, box) for box in boxes]))
    with torch.no_grad():
        return boxes, _loaded(str(weights))(batch).softmax(-1)


def detect(image: Any, weights: Path = WEIGHTS) -> list[NounDetection]:
    """Every foreground blob of an image (uint8 [H, W, 3] or PIL), with its most likely class."""
    boxes, probabilities = classify(image, weights)
    if not boxes:
        return []
    best, index = probabilities.max(-1)
    return [NounDetection(int(i), box, float(p)) for box, i, p in zip(boxes, index, best, strict=True)]


@cache
def class_of_name() -> dict[str, int]:
    """Every name, synonym and plural of a class (lower case) -> its class index."""
    return {form: noun.index for noun in noun_classes() for name in noun.names for form in (name, plural(name))}


def class_of(obj: SceneObject) -> int | None:
    """The class index a graph object names (by its head noun), or None."""
    return class_of_name().get((obj.noun or obj.name).lower())


class NounDetector:
    """`lab.detectors.Detector` for the noun model: each object of the graph is located by the
    most probable detection of its noun's class.

    `forced=True` is a forced choice instead: the graph's objects take distinct blobs, the
    assignment that makes the blobs most like the objects named (the largest product of the
    classifier's probabilities); an object is missing only when there are fewer blobs than objects.
    It measures where things are drawn when the drawings are too rough to be recognised outright,
    and is no substitute for recognising them; it counts no duplicates."""

    def __init__(self, weights: Path = WEIGHTS, forced: bool = False) -> None:
        self.weights = weights
        self.forced = forced

    def locate(self, image: Any, graph: SceneGraph) -> dict[str, Found | None]:
        if self.forced:
            return self._assigned(image, graph)
        found = detect(image, self.weights)
        size = np.asarray(image).shape[1]
        located: dict[str, Found | None] = {}
        for obj in graph.objects:
            wanted = class_of(obj)
            matches = [d for d in found if d.noun == wanted]
            best = max(matches, key=lambda d: d.probability, default=None)
            box = None if best is None else tuple(c / size for c in best.box)
            located[obj.id] = None if best is None else Found(box, best.probability, len(matches))
        return located

    def _assigned(self, image: Any, graph: SceneGraph) -> dict[str, Found | None]:
        boxes, probabilities = classify(image, self.weights)
        size = np.asarray(image).shape[1]
        wanted = [class_of(obj) for obj in graph.objects]
        known = [k for k, c in enumerate(wanted) if c is not None]
        located: dict[str, Found | None] = {obj.id: None for obj in graph.objects}
        if not boxes or not known:
            return located
        # objects x blobs; with fewer blobs than objects, the objects that fit best get one
        cost = -probabilities[:, [wanted[k] for k in known]].clamp_min(1e-9).log().T.numpy()
        rows, columns = optimize.linear_sum_assignment(cost)
        for o, b in ((known[r], int(c)) for r, c in zip(rows, columns, strict=True)):
            box = tuple(c / size for c in boxes[b])
            located[graph.objects[o].id] = Found(box, float(probabilities[b, wanted[o]]), 1)
        return located


def evaluate(scenes: int = 500, seed: int = 1, weights: Path = WEIGHTS, vae: nn.Module | None = None) -> dict:
    """Class-and-box accuracy on held-out rendered scenes (passed through `vae` when given): an
    object is right when a detection of its class covers it with IoU >= 0.5; extra detections are
    counted too."""
    rng = np.random.default_rng(seed)
    rendered = [sample_scene(rng) for _ in range(scenes)]
    images = [r[0] for r in rendered]
    if vae is not None:
        images = [image for start in range(0, scenes, 64) for image in through_vae(vae, images[start : start + 64])]
    right = total = extra = 0
    for image, (_, _, objects, _) in zip(images, rendered, strict=True):
        found = detect(image, weights)
        for obj in objects:
            total += 1
            right += any(d.noun == obj.noun.index and iou(d.box, obj.box) >= 0.5 for d in found)
        extra += max(0, len(found) - len(objects))
    return {"scenes": scenes, "objects": total, "class_and_box_accuracy": right / total, "extra_detections": extra}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    parser.add_argument("--scenes", type=int, default=12000)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--vae",
        type=Path,
        help="the noun model's VAE (a training checkpoint .pt or a model folder): half of the "
        "training scenes pass through it, as generated images would look",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    vae = load_vae(args.vae) if args.vae else None
    train(args.out, args.scenes, args.epochs, args.seed, vae)
    print(
        {
            "rendered": evaluate(weights=args.out),
            "through the VAE": evaluate(weights=args.out, vae=vae) if vae else None,
        }
    )


if __name__ == "__main__":
    main()
