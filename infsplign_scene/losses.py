"""The InfSplign math as pure tensor functions, vectorised over batch, objects and relations.

Shapes: B images, K objects, R relations, H x W map cells. Coordinates x (right) and y (down)
lie in [0, 1] at cell centres. Relations are index tensors, never Python loops.
"""

from __future__ import annotations

from functools import cache

import torch
import torch.nn.functional as F

from .relations import NEAR_DISTANCE, TABLE

# Predicate codes used by the index tensors: positions in the predicate table.
PREDICATE_CODES = {name: code for code, name in enumerate(TABLE)}
NEAR = PREDICATE_CODES["near"]
# Axis (0 = x, 1 = y; near reads x, times sign 0) and the sign that makes d = sign * (c_object - c_subject)
# positive when satisfied.
_AXIS = torch.tensor([info.axis or 0 for info in TABLE.values()])
_SIGN = torch.tensor([float(info.sign) for info in TABLE.values()])


def centroids_and_variances(maps: torch.Tensor, eps: float = 1e-8) -> tuple[torch.Tensor, torch.Tensor]:
    """Centroid and spatial variance of each map.

    maps: [B, K, H, W], non-negative. Returns centroids [B, K, 2] as (x, y) and variances [B, K],
    s2 = sum A ((x - cx)^2 + (y - cy)^2) / sum A.
    """
    height, width = maps.shape[-2:]
    ys = (torch.arange(height, device=maps.device, dtype=maps.dtype) + 0.5) / height
    xs = (torch.arange(width, device=maps.device, dtype=maps.dtype) + 0.5) / width
    mass = maps.sum(dim=(-2, -1)).clamp_min(eps)
    row_mass, column_mass = maps.sum(dim=-1), maps.sum(dim=-2)  # [B,K,H], [B,K,W]
    cx = (column_mass * xs).sum(-1) / mass
    cy = (row_mass * ys).sum(-1) / mass
    second = (column_mass * xs.square()).sum(-1) / mass + (row_mass * ys.square()).sum(-1) / mass
    variances = (second - cx.square() - cy.square()).clamp_min(0)
    return torch.stack([cx, cy], dim=-1), variances


def pair_gather(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """values [B, K, ...] picked at index [B, R] -> [B, R, ...].

    A one-hot product, not `torch.gather`: `conflicts.relation_gradients` takes one gradient per
    relation under vmap, where gather's backward falls back to a loop over relations. Elementwise
    rather than a matmul, so that TF32 never rounds the picked values."""
    picks = _one_hot(index, values.shape[1], values.dtype)  # [B, R, K]
    picks = picks.reshape(*picks.shape, *([1] * (values.dim() - 2)))
    return (picks * values.unsqueeze(1)).sum(2)


@cache
def _predicate_tables(device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """_AXIS and _SIGN on `device`, copied once: a copy from host memory makes the host wait for the GPU."""
    return _AXIS.to(device), _SIGN.to(device, dtype)


def _one_hot(index: torch.Tensor, classes: int, dtype: torch.dtype) -> torch.Tensor:
    """[...] -> [..., classes]. Unlike F.one_hot, no bounds check that waits for the GPU."""
    return (index.unsqueeze(-1) == torch.arange(classes, device=index.device)).to(dtype)


def relation_offsets(centroids: torch.Tensor, subject: torch.Tensor, obj: torch.Tensor, predicate: torch.Tensor):
    """Signed offset d along each relation's axis (positive when the order is right) and the
    centroid distance. centroids [B,K,2]; subject, obj, predicate [B,R] -> d [B,R], distance [B,R]."""
    c_subject, c_object = pair_gather(centroids, subject), pair_gather(centroids, obj)  # [B,R,2]
    delta = c_object - c_subject
    axes, signs = _predicate_tables(delta.device, delta.dtype)
    on_axis = _one_hot(axes[predicate], 2, delta.dtype)  # [B,R,2]; see pair_gather
    sign = signs[predicate]
    d = sign * (delta * on_axis).sum(-1)
    distance = delta.square().sum(-1).add(1e-12).sqrt()
    return d, distance


def spatial_loss(
    centroids: torch.Tensor,
    subject: torch.Tensor,
    obj: torch.Tensor,
    predicate: torch.Tensor,
    *,
    alpha: float,
    margin: float,
    near_margin: float,
) -> torch.Tensor:
    """Per-relation spatial loss [B, R] (the weights' defaults: `GuidanceConfig`).

    left/right/above/below: GELU(alpha * (margin - d)) with d the signed offset on the relation's
    axis (d = x_obj - x_subj for left_of, x_subj - x_obj for right_of, y_obj - y_subj for above,
    y_subj - y_obj for below). near: ReLU(distance - near_margin), which pulls the centroids
    together until they are within near_margin (the authors' code pushed them apart instead).
    """
    d, distance = relation_offsets(centroids, subject, obj, predicate)
    directional = _gelu(alpha * (margin - d))
    near = F.relu(distance - near_margin)
    is_near = (predicate == NEAR).to(near.dtype)
    return is_near * near + (1 - is_near) * directional  # not torch.where: see _gelu


def _gelu(x: torch.Tensor) -> torch.Tensor:
    """F.gelu (exact, erf form) in elementwise ops. `conflicts.relation_gradients` takes one gradient
    per relation under vmap, which loops over relations for gelu's and where's backward."""
    return 0.5 * x * (1 + torch.erf(x * 0.7071067811865476))


def satisfied(
    centroids: torch.Tensor,
    subject: torch.Tensor,
    obj: torch.Tensor,
    predicate: torch.Tensor,
    threshold: float = 0.0,
    near_margin: float = NEAR_DISTANCE,
) -> torch.Tensor:
    """Bool [B, R]: `relations.holds` vectorised, with the order along the axis right by more than
    `threshold` (near: centroids within near_margin)."""
    d, distance = relation_offsets(centroids, subject, obj, predicate)
    return torch.where(predicate == NEAR, distance <= near_margin, d > threshold)


def centroid_support(maps: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """The map's value at its own centroid, over its maximum: [B, K] in [0, 1].

    maps [B, K, H, W], centroids [B, K, 2] as (x, y). A map that is one blob has its centroid on
    the blob (near 1); a map split over two places has it in the empty space between (near 0)."""
    height, width = maps.shape[-2:]
    column = (centroids[..., 0] * width).long().clamp(0, width - 1)
    row = (centroids[..., 1] * height).long().clamp(0, height - 1)
    flat = maps.flatten(2)  # [B, K, H*W]
    at_centroid = flat.gather(2, (row * width + column).unsqueeze(-1)).squeeze(-1)
    return at_centroid / flat.amax(dim=2).clamp_min(1e-12)


def split_maps(
    maps: torch.Tensor,
    centroids: torch.Tensor,
    variances: torch.Tensor,
    support: float | None,
    variance: float | None,
    second_copy: torch.Tensor | None = None,
    resemblance: float | None = None,
) -> torch.Tensor:
    """Bool [B, K]: the object's map is not one compact blob: its centroid falls where the map is
    below `support` of its maximum, or its spread exceeds `variance`; or a second place looks like
    the object (`second_copy` [B, K] of `second_copies`) at least `resemblance` (each when given)."""
    split = torch.zeros(maps.shape[:2], dtype=torch.bool, device=maps.device)
    if support is not None:
        split = split | (centroid_support(maps, centroids) < support)
    if variance is not None:
        split = split | (variances > variance)
    if resemblance is not None and second_copy is not None:
        split = split | (second_copy >= resemblance)
    return split


def relative_to_peak(maps: torch.Tensor) -> torch.Tensor:
    """Each map over its own maximum: [B, K, H, W] in [0, 1] for non-negative maps [B, K, H, W]."""
    return maps / maps.flatten(2).amax(dim=2).clamp_min(1e-12)[..., None, None]


def as_weights(values: torch.Tensor) -> torch.Tensor:
    """Non-negative values [B, K, Q] scaled to sum to 1 over Q (all zero stays zero)."""
    return values / values.sum(dim=2, keepdim=True).clamp_min(1e-12)


def resemblance_maps(maps: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """How much each cell looks like each object: [B, K, H, W] in [0, 1].

    maps [B, K, H, W], an object's attention; features [B, H*W, C], the decoder's activations at
    the maps' cells. An object's prototype is its attention-weighted mean (unit) feature; a cell's
    value is its cosine similarity to the prototype, clamped at 0. A second copy of an object,
    which its attention map may not follow, looks like the first and lights up here."""
    weights = as_weights(maps.flatten(2))
    unit = F.normalize(features.float(), dim=-1)
    prototype = F.normalize(torch.einsum("bkq,bqc->bkc", weights, unit), dim=-1)
    return torch.einsum("bkc,bqc->bkq", prototype, unit).clamp_min(0).view_as(maps)


def second_region_peak(maps: torch.Tensor, floor: float) -> torch.Tensor:
    """The peak of a map outside its main region, over its maximum: [B, K] in [0, 1].

    maps [B, K, H, W]. Regions are the 8-connected parts of the map at or above `floor` of its
    maximum; the main region holds the maximum. 0 when the map is one region."""
    height, width = maps.shape[-2:]
    relative = relative_to_peak(maps)
    inside = relative >= floor
    # each cell's label spreads to its neighbours inside the mask: H + W rounds fill any region
    # that is not a long winding path
    ids = torch.arange(1, height * width + 1, device=maps.device, dtype=torch.float32).view(1, 1, height, width)
    labels = (ids * inside).flatten(0, 1).unsqueeze(1)  # [B*K, 1, H, W]
    mask = inside.flatten(0, 1).unsqueeze(1)
    for _ in range(height + width):
        labels = F.max_pool2d(labels, kernel_size=3, stride=1, padding=1) * mask
    labels = labels.view_as(maps)
    main = labels.flatten(2).gather(2, relative.flatten(2).argmax(dim=2, keepdim=True))[..., None]
    return (relative * (inside & (labels != main))).flatten(2).amax(dim=2)


# A cell belongs to a region of the resemblance map when it is this close to the best match:
# cosine similarities of a model's features are high everywhere, so regions are cut near the top.
RESEMBLANCE_FLOOR = 0.55


def second_copies(maps: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """How much the best place outside an object's main region looks like the object, relative
    to the best match: [B, K] in [0, 1] (0 when one region). maps [B, K, H, W]; features [B, H*W, C]."""
    return second_region_peak(resemblance_maps(maps, features), RESEMBLANCE_FLOOR)


# The image check of objects drawn twice (`colour_copies`): a pixel looks like an object when its
# colour lies in the object's direction from the background, at least this share as far from it as
# the object's colour; its regions are cut this close to the best match.
COLOUR_STRENGTH = 0.5
COLOUR_FLOOR = 0.95


def colour_copies(
    maps: torch.Tensor, image: torch.Tensor, strength: float = COLOUR_STRENGTH, floor: float = COLOUR_FLOOR
) -> torch.Tensor:
    """How much the best place of the image outside an object's main region has the object's
    colour, relative to the best match: [B, K] in [0, 1] (0 when one region).

    maps [B, K, h, w], the objects' attention; image [B, 3, H, W], RGB in [0, 1], read at most 64
    pixels a side. Colours are read as offsets from the background (the image's median colour):
    an object's is the mean offset under the top half of its map; a pixel's resemblance is the
    cosine of its offset to the object's, where the offset is at least `strength` as long (else
    0); regions are cut at `floor` of the best match. Offsets, not colours, so that a copy blended
    with the background, fainter than the first, still matches. A second copy that the map does
    not follow has the object's colour too."""
    image = F.adaptive_avg_pool2d(image.float(), [min(side, 64) for side in image.shape[-2:]])
    maps = F.interpolate(maps.float(), size=image.shape[-2:], mode="bilinear", align_corners=False).clamp_min(0)
    weights = as_weights((relative_to_peak(maps) - 0.5).clamp_min(0).flatten(2))
    pixels = image.flatten(2)  # [B, 3, H*W]
    offsets = pixels - pixels.median(dim=2, keepdim=True).values
    colour = torch.einsum("bkq,bcq->bkc", weights, offsets)  # [B, K, 3]
    cosine = torch.einsum("bkc,bcq->bkq", F.normalize(colour, dim=-1), F.normalize(offsets, dim=1))
    strong = offsets.norm(dim=1, keepdim=True) >= strength * colour.norm(dim=-1, keepdim=True)
    resemblance = (cosine.clamp_min(0) * strong).view_as(maps)
    return second_region_peak(resemblance, floor)


def presence_loss(variances: torch.Tensor, subject: torch.Tensor, obj: torch.Tensor) -> torch.Tensor:
    """s2_subject + s2_object per relation [B, R]: compact, present objects. variances [B, K]."""
    return pair_gather(variances, subject) + pair_gather(variances, obj)


def balance_loss(variances: torch.Tensor, subject: torch.Tensor, obj: torch.Tensor) -> torch.Tensor:
    """|s2_subject - s2_object| per relation [B, R]: neither object swallows the other."""
    return (pair_gather(variances, subject) - pair_gather(variances, obj)).abs()
