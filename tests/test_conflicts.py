import itertools

import pytest
import torch
from conftest import DispatchedOperators, objective_for

from infsplign_scene.compile import statistics
from infsplign_scene.conflicts import combine, relation_gradients
from infsplign_scene.guidance import GuidanceConfig, ScenePipeline
from infsplign_scene.scene import SceneGraph


def test_cosine_and_opposed_share_for_opposite_relations():
    gradients = torch.tensor([[[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0]]])  # [B=1, R=3, D=2]
    weight = torch.tensor([[1.0, 0.5, 1.0]])
    combined, report = combine(gradients, weight, "sum")
    assert combined.tolist() == [[0.0, 2.0]]
    assert report.cosine[0, 0, 1].item() == pytest.approx(-1.0)
    assert report.cosine[0, 0, 2].item() == pytest.approx(0.0)
    assert report.opposed.item() == pytest.approx(0.0)  # orthogonal combined update opposes nobody


def test_pcgrad_removes_the_opposing_component_of_the_lower_priority_relation():
    gradients = torch.tensor([[[2.0, 0.0], [-3.0, 1.0]]])
    weight = torch.tensor([[2.0, 1.0]])
    combined, _ = combine(gradients, weight, "pcgrad")
    assert combined.tolist() == [[2.0, 1.0]]  # (-3, 1) loses its (-3, 0) part
    dropped, _ = combine(gradients, weight, "priority")
    assert dropped.tolist() == [[2.0, 0.0]]
    plain, report = combine(gradients, weight, "sum")
    assert plain.tolist() == [[-1.0, 1.0]]
    assert report.opposed.item() == pytest.approx(0.5)  # the sum works against relation 0


def test_relation_gradients_match_autograd_per_relation():
    objective = objective_for("a red circle left of a blue square, the red circle above a green triangle")
    torch.manual_seed(0)
    maps = {4: torch.rand(1, 3, 4, 4), 8: torch.rand(1, 3, 8, 8)}
    stats = statistics(maps)
    leaves = [x.detach().requires_grad_(True) for pair in stats.values() for x in pair]
    packed = {4: (leaves[0], leaves[1]), 8: (leaves[2], leaves[3])}
    value = objective.evaluate(packed, GuidanceConfig())
    batched = relation_gradients(value.relation_loss, leaves)
    for r in range(2):
        single = torch.autograd.grad(value.relation_loss[0, r], leaves, retain_graph=True)
        assert torch.allclose(batched[0, r], torch.cat([g.flatten() for g in single]), atol=1e-6)


def test_relation_gradients_run_as_many_operators_for_32_relations_as_for_one():
    # vmap loops over relations for ops without a batching rule (gather's, gelu's and where's
    # backward): that showed as 1,404 operators for 32 relations against 162 for one
    def operators(relations: int) -> int:
        # object k is k-th from the left and from the top: every statement below holds together
        statements = itertools.product(itertools.combinations(range(8), 2), ("left_of", "above", "near"))
        graph = SceneGraph(
            objects=[{"id": f"o{k}", "name": f"thing{k}"} for k in range(8)],
            relations=[
                {"subject": f"o{a}", "predicate": predicate, "object": f"o{b}"}
                for (a, b), predicate in itertools.islice(statements, relations)
            ],
        )
        objective = objective_for(graph)
        assert objective.num_relations == relations
        maps = {4: torch.rand(1, 8, 4, 4), 8: torch.rand(1, 8, 8, 8)}
        leaves = [x.detach().requires_grad_(True) for pair in statistics(maps).values() for x in pair]
        value = objective.evaluate({4: tuple(leaves[:2]), 8: tuple(leaves[2:])}, GuidanceConfig())
        with DispatchedOperators() as operators_run:
            relation_gradients(value.relation_loss, leaves)
        return len(operators_run.seen)

    assert operators(32) <= operators(1) + 20


def test_the_three_combinations_give_three_different_updates_in_the_pipeline(tiny_pipe):
    """A 2-cycle with only the spatial term: the relations' centroid gradients are opposite, so
    the sum nearly cancels, priority keeps the first relation's gradient, and PCGrad keeps it plus
    the part of the second that does not oppose it."""
    prompt = "a red circle left of a blue square, the blue square left of the red circle"
    steps = {}
    for mode in ("sum", "pcgrad", "priority"):
        config = GuidanceConfig(eta=20.0, combination=mode, lambda_presence=0.0, lambda_balance=0.0)
        result = ScenePipeline(tiny_pipe, config)(prompt, seed=0, num_inference_steps=2, progress=False)
        steps[mode] = result.trace[0]
    assert steps["sum"]["cosine"][0][0][1] < -0.99  # opposite relations
    norms = {mode: step["grad_norm"][0] for mode, step in steps.items()}
    assert norms["sum"] < 0.05 * norms["priority"]
    assert norms["pcgrad"] > norms["priority"]
    assert steps["priority"]["opposed"][0] == 0.5  # the kept relation's update works against the other
