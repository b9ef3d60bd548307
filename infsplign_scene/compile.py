"""Compile analysed scene graphs into one weighted InfSplign objective.

Rules (applied in this order):
1. conflicts are resolved by the analysis policy (`drop` removes a minimum-weight set);
2. duplicates (the same relation stated twice, possibly as its inverse) become one relation
   with the larger weight;
3. redundant relations (implied by a chain of others) keep `redundant_weight` x their weight,
   since the chain already pulls the same way; implied relations are not added;
4. degree normalisation: w_r = weight_r / sqrt(deg(subject) * deg(object)), so an object in many
   relations does not dominate (a single pair keeps weight 1, as in the paper).

The objective of one image at one step is

    sum_levels 1/|levels| * sum_r w_r * (lambda_s L_s(r) + lambda_p L_p(r) [coarse] + lambda_b L_b(r) [middle])

which mirrors the authors' average over captured layers with equal weight per level.
Several graphs are stacked into one batched objective by padding relations with weight 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch

from .analysis import Analysis
from .config import GuidanceConfig
from .losses import (
    PREDICATE_CODES,
    balance_loss,
    centroids_and_variances,
    pair_gather,
    presence_loss,
    satisfied,
    spatial_loss,
    split_maps,
)
from .relations import canonical_triple
from .scene import Relation, SceneGraph


@dataclass
class ObjectiveValue:
    """What one evaluation of the objective produced; every tensor has batch first."""

    total: torch.Tensor  # [B]
    relation_loss: torch.Tensor  # [B, R] weighted per-relation loss summed over levels
    satisfied: torch.Tensor  # [B, R] bool, on the finest captured level
    uncertain: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.bool))  # [B, R]: a split map
    settled: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.bool))  # [B] held with margin
    centroids: dict[int, torch.Tensor] = field(default_factory=dict)  # level height -> [B, K, 2]
    variances: dict[int, torch.Tensor] = field(default_factory=dict)  # level height -> [B, K]
    second_copy: torch.Tensor | None = None  # [B, K]: how much a second place looks like the object


@dataclass
class Objective:
    """Index tensors of the relations to guide, for a batch of B graphs.

    subject, obj, predicate, weight: [B, R] (padding has weight 0); object_ids: per graph, the
    K_b objects that take part in relations (index k of the maps), padded to K.
    """

    graphs: list[SceneGraph]
    analyses: list[Analysis]
    relations: list[list[Relation]]
    object_ids: list[list[str]]
    subject: torch.Tensor
    obj: torch.Tensor
    predicate: torch.Tensor
    weight: torch.Tensor

    @property
    def num_relations(self) -> int:
        return self.subject.shape[1]

    def to(self, device: torch.device | str) -> Objective:
        """This objective with its index tensors on `device`: moved once per run, not on every step
        (a copy from host memory makes the host wait for the GPU)."""
        return replace(
            self,
            subject=self.subject.to(device),
            obj=self.obj.to(device),
            predicate=self.predicate.to(device),
            weight=self.weight.to(device),
        )

    @property
    def num_objects(self) -> int:
        return max((len(ids) for ids in self.object_ids), default=0)

    def __call__(self, levels: dict[int, torch.Tensor], weights: GuidanceConfig) -> ObjectiveValue:
        """levels: map height -> object maps [B, K, h, w], coarsest first (coarse, middle, ...)."""
        return self.evaluate(statistics(levels), weights)

    def uncertain(
        self,
        maps: torch.Tensor,
        centroids: torch.Tensor,
        variances: torch.Tensor,
        weights: GuidanceConfig,
        second_copy: torch.Tensor | None = None,
    ):
        """Bool [B, R]: a relation whose subject's or object's map is split (`losses.split_maps`) on
        the finest level, or whose subject or object seems drawn twice: its satisfaction, read from
        centroids, is not to be trusted.

        maps [B, K, H, W]; centroids [B, K, 2]; variances [B, K]; second_copy [B, K] or None."""
        split = split_maps(
            maps,
            centroids,
            variances,
            weights.split_support,
            weights.split_variance,
            second_copy,
            weights.split_resemblance,
        )
        return self.involving(split)

    def involving(self, flagged: torch.Tensor) -> torch.Tensor:
        """Bool [B, R]: the relations (of positive weight) whose subject or object is flagged [B, K]."""
        device = flagged.device
        subject, obj = self.subject.to(device), self.obj.to(device)
        either = pair_gather(flagged.float(), subject) + pair_gather(flagged.float(), obj)
        return (either > 0) & (self.weight.to(device) > 0)

    def evaluate(self, stats: dict[int, tuple[torch.Tensor, torch.Tensor]], weights: GuidanceConfig) -> ObjectiveValue:
        """The objective from each level's centroids [B, K, 2] and variances [B, K]."""
        heights = sorted(stats)
        device = stats[heights[0]][0].device
        subject, obj, predicate = (t.to(device) for t in (self.subject, self.obj, self.predicate))
        weight = self.weight.to(device)
        relation_loss = 0
        for rank, height in enumerate(heights):
            centroids, variances = stats[height]
            per_relation = weights.lambda_spatial * spatial_loss(
                centroids,
                subject,
                obj,
                predicate,
                alpha=weights.alpha,
                margin=weights.margin,
                near_margin=weights.near_margin,
            )
            if rank == 0:
                per_relation = per_relation + weights.lambda_presence * presence_loss(variances, subject, obj)
            elif rank == 1:
                per_relation = per_relation + weights.lambda_balance * balance_loss(variances, subject, obj)
            relation_loss = relation_loss + weight * per_relation / len(heights)
        finest = stats[heights[-1]][0]
        with_margin = satisfied(
            finest, subject, obj, predicate, threshold=weights.margin, near_margin=weights.near_margin
        )
        return ObjectiveValue(
            total=relation_loss.sum(dim=1),
            relation_loss=relation_loss,
            satisfied=satisfied(finest, subject, obj, predicate, near_margin=weights.near_margin) & (weight > 0),
            settled=(with_margin | (weight == 0)).all(dim=1),
            centroids={h: stats[h][0] for h in heights},
            variances={h: stats[h][1] for h in heights},
        )


def statistics(levels: dict[int, torch.Tensor]) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """Centroids [B, K, 2] and variances [B, K] of each level's object maps, in float32."""
    return {height: centroids_and_variances(maps.float()) for height, maps in levels.items()}


def resolve_relations(analysis: Analysis, redundant_weight: float = 0.5) -> list[Relation]:
    """Apply rules 2-4 of the module docstring to the analysed graph."""
    merged: dict[tuple[str, str, str], Relation] = {}
    for relation in analysis.graph.relations:
        key = canonical_triple(relation.subject, relation.predicate, relation.object)
        if key not in merged or merged[key].weight < relation.weight:
            merged[key] = relation
    redundant = {canonical_triple(r.subject, r.predicate, r.object) for r in analysis.redundant}
    degree: dict[str, int] = {}
    for relation in merged.values():
        for object_id in (relation.subject, relation.object):
            degree[object_id] = degree.get(object_id, 0) + 1
    resolved = []
    for key, relation in merged.items():
        weight = relation.weight * (redundant_weight if key in redundant else 1.0)
        weight /= math.sqrt(degree[relation.subject] * degree[relation.object])
        resolved.append(relation.model_copy(update={"weight": weight}))
    return resolved


def compile_objective(analyses: Analysis | list[Analysis], redundant_weight: float = 0.5) -> Objective:
    """Stack the relations of analysed graphs (`analyze`) into one batched objective."""
    analyses = analyses if isinstance(analyses, list) else [analyses]
    for analysis in analyses:
        if not isinstance(analysis, Analysis):
            raise TypeError(f"compile_objective takes analyses (analyze(graph)), got {type(analysis).__name__}")
    relations = [resolve_relations(a, redundant_weight) for a in analyses]
    object_ids: list[list[str]] = []
    for analysis, graph_relations in zip(analyses, relations, strict=False):
        used = {r.subject for r in graph_relations} | {r.object for r in graph_relations}
        object_ids.append([o.id for o in analysis.graph.objects if o.id in used])
    batch, width = len(analyses), max((len(r) for r in relations), default=0)
    subject = torch.zeros(batch, width, dtype=torch.long)
    obj = torch.zeros(batch, width, dtype=torch.long)
    predicate = torch.zeros(batch, width, dtype=torch.long)
    weight = torch.zeros(batch, width)
    for b, graph_relations in enumerate(relations):
        position = {object_id: k for k, object_id in enumerate(object_ids[b])}
        for r, relation in enumerate(graph_relations):
            subject[b, r] = position[relation.subject]
            obj[b, r] = position[relation.object]
            predicate[b, r] = PREDICATE_CODES[relation.predicate]
            weight[b, r] = relation.weight
    return Objective(
        graphs=[a.graph for a in analyses],
        analyses=analyses,
        relations=relations,
        object_ids=object_ids,
        subject=subject,
        obj=obj,
        predicate=predicate,
        weight=weight,
    )
