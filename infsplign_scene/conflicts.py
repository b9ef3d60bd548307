"""Relations' gradients in centroid space: how they conflict, and conflict-aware combination.

Every relation's loss depends on a few numbers per object (centroid and variance on each level).
The gradient of each relation with respect to those numbers is cheap (no UNet pass), so per step
we measure the pairwise cosine similarity of the relations' gradients and the share of relations
the combined update works against. The combined centroid-space gradient is then pushed through
the UNet with one vector-Jacobian product, so the cost does not grow with the number of relations.

Combinations:
- ``sum``: the plain weighted sum (the objective's gradient);
- ``pcgrad``: PCGrad in centroid space; each relation's gradient loses its component that opposes
  a relation of higher priority (larger compiled weight first, then order of statement);
- ``priority``: a relation's gradient is dropped where it opposes any higher-priority relation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

import torch

from .config import Combination

COMBINATIONS: tuple[str, ...] = get_args(Combination)


@dataclass
class ConflictReport:
    cosine: torch.Tensor  # [B, R, R] cosine similarity of relation gradients (0 where undefined)
    opposed: torch.Tensor  # [B] share of active relations whose gradient the combined update opposes


def relation_gradients(relation_loss: torch.Tensor, leaves: list[torch.Tensor]) -> torch.Tensor:
    """d relation_loss[b, r] / d leaves, flattened per image: [B, R, D].

    relation_loss [B, R] must be computed from `leaves` (each [B, ...], requires_grad)."""
    batch, relations = relation_loss.shape
    if relations == 0:
        return relation_loss.new_zeros(batch, 0, sum(leaf[0].numel() for leaf in leaves))
    selectors = torch.eye(relations, device=relation_loss.device).unsqueeze(1).expand(relations, batch, relations)
    grads = torch.autograd.grad(
        relation_loss, leaves, grad_outputs=selectors, is_grads_batched=True, retain_graph=True, allow_unused=True
    )
    flat = [
        (g if g is not None else torch.zeros(relations, *leaf.shape, device=leaf.device)).reshape(relations, batch, -1)
        for g, leaf in zip(grads, leaves, strict=True)
    ]
    return torch.cat(flat, dim=-1).transpose(0, 1)  # [B, R, D]


def combine(
    gradients: torch.Tensor, weight: torch.Tensor, mode: Combination = "sum"
) -> tuple[torch.Tensor, ConflictReport]:
    """Combine per-relation gradients [B, R, D] (already weighted) into one [B, D].

    weight [B, R] orders the priorities (padding has weight 0 and a zero gradient)."""
    norms = gradients.norm(dim=-1)  # [B, R]
    unit = gradients / norms.clamp_min(1e-12).unsqueeze(-1)
    cosine = unit @ unit.transpose(1, 2)
    active = norms > 1e-12
    cosine = cosine * (active.unsqueeze(1) & active.unsqueeze(2))
    if mode == "sum":
        combined = gradients.sum(dim=1)
    else:
        order = torch.argsort(-weight, dim=1, stable=True)  # highest priority first
        ranked = torch.gather(gradients, 1, order.unsqueeze(-1).expand_as(gradients))
        adjusted = ranked.clone()
        for r in range(1, ranked.shape[1]):  # over priority ranks of a handful of relations, on tiny vectors
            higher = ranked[:, :r]  # [B, r, D]
            dots = (adjusted[:, r : r + 1] * higher).sum(-1)  # [B, r]
            opposing = dots < 0
            if mode == "pcgrad":
                squared = higher.square().sum(-1).clamp_min(1e-12)
                correction = ((dots * opposing / squared).unsqueeze(-1) * higher).sum(1)
                adjusted[:, r] = adjusted[:, r] - correction
            else:
                adjusted[:, r] = adjusted[:, r] * (~opposing.any(dim=1, keepdim=True))
        combined = adjusted.sum(dim=1)
    against = ((gradients * combined.unsqueeze(1)).sum(-1) < 0) & active
    opposed = against.sum(1) / active.sum(1).clamp_min(1)
    return combined, ConflictReport(cosine=cosine, opposed=opposed)
