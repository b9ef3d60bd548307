"""Graph analysis with networkx: contradictions, duplicates, implied and redundant relations,
and conflict resolution by a stated policy.

Each axis is a precedence digraph: an edge a -> b means "a is left of b" (x axis) or "a is
above b" (y axis); `right_of` and `below` are stored as their inverses. A directed cycle is a
contradiction. `near` relations have no direction and cannot contradict each other.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import get_args

import networkx as nx

from .config import Policy
from .errors import ConflictError, SceneGraphError
from .relations import AXIS_NAMES, TABLE, canonical_triple, forward_predicate
from .scene import Relation, SceneGraph

POLICIES: tuple[str, ...] = get_args(Policy)
_AXIS_OF = {name: AXIS_NAMES[info.axis] for name, info in TABLE.items() if info.axis is not None}
_FORWARD = {AXIS_NAMES[axis]: forward_predicate(axis) for axis in (0, 1)}
# Exact minimum-weight cycle breaking enumerates subsets of the edges of each strongly connected
# component of up to EXACT_LIMIT edges, at most EXACT_BUDGET subsets per analysis in all; past
# either, a greedy choice (Analysis.exact is then False).
EXACT_LIMIT = 16
EXACT_BUDGET = 5_000
MAX_REPORTED_CYCLES = 64


@dataclass(frozen=True)
class Conflict:
    """A directed cycle on one axis, e.g. cat left of dog, dog left of bird, bird left of cat."""

    axis: str
    relations: tuple[Relation, ...]

    def __str__(self) -> str:
        return ", ".join(str(r) for r in self.relations)


@dataclass(frozen=True)
class Dropped:
    relation: Relation
    reason: str


@dataclass
class Analysis:
    """What `analyze` found, and the graph after applying the policy."""

    policy: str
    graph: SceneGraph
    conflicts: list[Conflict] = field(default_factory=list)
    duplicates: list[tuple[Relation, ...]] = field(default_factory=list)
    implied: list[Relation] = field(default_factory=list)
    redundant: list[Relation] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)
    exact: bool = True

    @property
    def consistent(self) -> bool:
        """True when no contradiction remains in the resolved graph."""
        return not self.conflicts or self.policy == "drop"

    def to_dict(self) -> dict:
        return {
            "policy": self.policy,
            "consistent": self.consistent,
            "conflicts": [{"axis": c.axis, "relations": [str(r) for r in c.relations]} for c in self.conflicts],
            "duplicates": [[str(r) for r in group] for group in self.duplicates],
            "implied": [str(r) for r in self.implied],
            "redundant": [str(r) for r in self.redundant],
            "dropped": [{"relation": str(d.relation), "reason": d.reason} for d in self.dropped],
            "exact": self.exact,
            "graph": self.graph.model_dump(mode="json", exclude_none=True),
        }

    def __str__(self) -> str:
        lines = [f"{len(self.graph.objects)} objects, {len(self.graph.relations)} relations (policy: {self.policy})"]
        for relation in self.graph.relations:
            lines.append(f"  {relation}")
        for title, items in (
            ("conflicts", [str(c) for c in self.conflicts]),
            ("duplicates", [" = ".join(str(r) for r in group) for group in self.duplicates]),
            ("implied", [str(r) for r in self.implied]),
            ("redundant", [str(r) for r in self.redundant]),
            ("dropped", [f"{d.relation} ({d.reason})" for d in self.dropped]),
        ):
            if items:
                lines.append(f"{title}:")
                lines += [f"  {item}" for item in items]
        lines.append("consistent" if self.consistent else "CONFLICTS REMAIN")
        return "\n".join(lines)


def axis_graphs(relations: list[Relation]) -> dict[str, nx.DiGraph]:
    """One precedence digraph per axis; each edge lists the indices of the relations behind it."""
    graphs = {"x": nx.DiGraph(), "y": nx.DiGraph()}
    for index, relation in enumerate(relations):
        axis = _AXIS_OF.get(relation.predicate)
        if axis is None:
            continue
        a, b = (relation.subject, relation.object)
        if relation.predicate != _FORWARD[axis]:
            a, b = b, a
        graph = graphs[axis]
        if graph.has_edge(a, b):
            graph[a][b]["relations"].append(index)
            graph[a][b]["weight"] += relation.weight
        else:
            graph.add_edge(a, b, relations=[index], weight=relation.weight)
    return graphs


def analyze(graph: SceneGraph, policy: Policy = "keep") -> Analysis:
    """Find contradictions, duplicates, implied and redundant relations; resolve by `policy`.

    - ``error``: raise `ConflictError` naming the first cycle;
    - ``drop``: remove a minimum-total-weight set of relations that breaks every cycle;
    - ``keep``: change nothing, only report.
    """
    if policy not in POLICIES:
        raise SceneGraphError(f"unknown policy {policy!r}; choose one of {', '.join(POLICIES)}")
    if not isinstance(graph, SceneGraph):
        raise TypeError(f"analyze takes a SceneGraph (parse(text), load_scene(...)), got {type(graph).__name__}")
    relations = graph.relations
    axes = axis_graphs(relations)
    conflicts = _find_conflicts(axes, relations)
    analysis = Analysis(policy=policy, graph=graph, conflicts=conflicts, duplicates=_duplicates(relations))
    if conflicts and policy == "error":
        raise ConflictError(
            f"contradicting relations: {conflicts[0]}"
            + (f" (and {len(conflicts) - 1} more cycles)" if len(conflicts) > 1 else ""),
            cycles=conflicts,
        )
    if conflicts and policy == "drop":
        drop_indices, analysis.exact = _cycle_breaking_set(axes)
        analysis.dropped = [
            Dropped(relations[i], "breaks a contradiction at the least total weight") for i in sorted(drop_indices)
        ]
        kept = [r for i, r in enumerate(relations) if i not in drop_indices]
        analysis.graph = graph.model_copy(update={"relations": kept})
        axes = axis_graphs(kept)
    analysis.implied, analysis.redundant = _closure_and_reduction(axes, analysis.graph.relations)
    return analysis


def _find_conflicts(axes: dict[str, nx.DiGraph], relations: list[Relation]) -> list[Conflict]:
    conflicts = []
    for axis, digraph in axes.items():
        for cycle in itertools.islice(nx.simple_cycles(digraph), MAX_REPORTED_CYCLES):
            edges = zip(cycle, cycle[1:] + cycle[:1], strict=False)
            conflicts.append(Conflict(axis, tuple(relations[digraph[a][b]["relations"][0]] for a, b in edges)))
    return conflicts


def _duplicates(relations: list[Relation]) -> list[tuple[Relation, ...]]:
    groups: dict[tuple[str, str, str], list[Relation]] = {}
    for relation in relations:
        groups.setdefault(canonical_triple(relation.subject, relation.predicate, relation.object), []).append(relation)
    return [tuple(group) for group in groups.values() if len(group) > 1]


def _cycle_breaking_set(axes: dict[str, nx.DiGraph]) -> tuple[set[int], bool]:
    """Relation indices of a minimum-weight feedback arc set (exact when small, greedy otherwise)."""
    dropped: set[int] = set()
    exact = True
    budget = [EXACT_BUDGET]
    for digraph in axes.values():
        for component in nx.strongly_connected_components(digraph):
            if len(component) < 2:
                continue
            sub = digraph.subgraph(component).copy()
            edges = list(sub.edges)
            chosen = _exact_feedback_arcs(sub, edges, budget) if len(edges) <= EXACT_LIMIT else None
            if chosen is None:
                exact = False
                chosen = _greedy_feedback_arcs(sub)
            for a, b in chosen:
                dropped.update(digraph[a][b]["relations"])
    return dropped, exact


def _exact_feedback_arcs(
    sub: nx.DiGraph, edges: list[tuple[str, str]], budget: list[int]
) -> list[tuple[str, str]] | None:
    """The lightest set of edges whose removal leaves no cycle, or None when `budget[0]` (subsets
    left to try, shared by the whole analysis) runs out first."""
    best: tuple[float, list] | None = None
    for size in range(1, len(edges) + 1):
        for subset in itertools.combinations(edges, size):
            weight = sum(sub[a][b]["weight"] for a, b in subset)
            if best is not None and weight >= best[0]:
                continue
            budget[0] -= 1
            if budget[0] < 0:
                return None
            trial = sub.copy()
            trial.remove_edges_from(subset)
            if nx.is_directed_acyclic_graph(trial):
                best = (weight, list(subset))
    assert best is not None
    return best[1]


def _greedy_feedback_arcs(sub: nx.DiGraph) -> list[tuple[str, str]]:
    trial, chosen = sub.copy(), []
    while True:
        try:
            cycle = nx.find_cycle(trial)
        except nx.NetworkXNoCycle:
            return chosen
        a, b = min(((u, v) for u, v, *_ in cycle), key=lambda e: trial[e[0]][e[1]]["weight"])
        trial.remove_edge(a, b)
        chosen.append((a, b))


def _closure_and_reduction(
    axes: dict[str, nx.DiGraph], relations: list[Relation]
) -> tuple[list[Relation], list[Relation]]:
    """Implied relations (in the transitive closure, not stated) and redundant stated ones
    (not in the transitive reduction). Only defined for acyclic axes."""
    implied, redundant = [], []
    for axis, digraph in axes.items():
        if not nx.is_directed_acyclic_graph(digraph):
            continue
        closure = nx.transitive_closure_dag(digraph)
        for a, b in closure.edges:
            if not digraph.has_edge(a, b):
                implied.append(Relation(subject=a, predicate=_FORWARD[axis], object=b))
        reduction = nx.transitive_reduction(digraph)
        for a, b in digraph.edges:
            if not reduction.has_edge(a, b):
                redundant += [relations[i] for i in digraph[a][b]["relations"]]
    return implied, redundant
