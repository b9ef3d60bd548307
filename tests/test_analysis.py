import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infsplign_scene import ConflictError, SceneGraph, SceneGraphError, analyze, parse


def graph(relations, count=None):
    ids = sorted({r[0] for r in relations} | {r[2] for r in relations})
    return SceneGraph(
        objects=[{"id": i, "name": i} for i in ids],
        relations=[
            {"subject": s, "predicate": p, "object": o, "weight": w}
            for s, p, o, *rest in relations
            for w in [rest[0] if rest else 1.0]
        ],
    )


CYCLE = [("cat", "left_of", "dog"), ("dog", "left_of", "bird"), ("bird", "left_of", "cat")]


def test_cycle_is_reported_by_its_relations():
    analysis = analyze(graph(CYCLE))
    assert len(analysis.conflicts) == 1
    assert sorted(str(r) for r in analysis.conflicts[0].relations) == sorted(f"{s} {p} {o}" for s, p, o in CYCLE)
    assert not analysis.consistent


def test_inverses_are_normalised_into_one_axis():
    analysis = analyze(graph([("a", "left_of", "b"), ("a", "right_of", "b")]))
    assert analysis.conflicts and analysis.conflicts[0].axis == "x"
    vertical = analyze(graph([("a", "above", "b"), ("b", "above", "c"), ("a", "below", "c")]))
    assert vertical.conflicts and vertical.conflicts[0].axis == "y"


def test_duplicates_implied_and_redundant():
    analysis = analyze(
        graph(
            [
                ("a", "left_of", "b"),
                ("b", "right_of", "a"),
                ("b", "left_of", "c"),
                ("a", "left_of", "c"),
                ("a", "near", "d"),
                ("d", "near", "a"),
            ]
        )
    )
    assert not analysis.conflicts
    assert sorted(len(group) for group in analysis.duplicates) == [2, 2]
    assert [str(r) for r in analysis.redundant] == ["a left_of c"]
    chain = analyze(graph([("a", "above", "b"), ("b", "above", "c")]))
    assert [str(r) for r in chain.implied] == ["a above c"]


def test_error_policy_raises_naming_the_cycle():
    with pytest.raises(ConflictError, match="cat left_of dog") as info:
        analyze(graph(CYCLE), policy="error")
    assert len(info.value.cycles) == 1


def test_drop_policy_removes_the_lightest_relation():
    relations = [
        ("cat", "left_of", "dog", 2.0),
        ("dog", "left_of", "bird", 3.0),
        ("bird", "left_of", "cat", 0.5),
        ("cat", "above", "bird"),
    ]
    analysis = analyze(graph(relations), policy="drop")
    assert [str(d.relation) for d in analysis.dropped] == ["bird left_of cat"]
    assert len(analysis.graph.relations) == 3 and analysis.consistent and analysis.exact


def test_drop_policy_is_minimum_weight_not_minimum_count():
    # two cycles sharing the heavy edge a->b: dropping it (weight 3) costs more than the two light ones (1 + 1)
    relations = [
        ("a", "left_of", "b", 3.0),
        ("b", "left_of", "c", 1.0),
        ("c", "left_of", "a", 5.0),
        ("b", "left_of", "d", 1.0),
        ("d", "left_of", "a", 5.0),
    ]
    analysis = analyze(graph(relations), policy="drop")
    assert sorted(str(d.relation) for d in analysis.dropped) == ["b left_of c", "b left_of d"]


def test_keep_policy_keeps_everything_and_unknown_policy_errors():
    analysis = analyze(graph(CYCLE), policy="keep")
    assert len(analysis.graph.relations) == 3 and not analysis.dropped
    with pytest.raises(SceneGraphError, match="unknown policy"):
        analyze(graph(CYCLE), policy="vote")


def test_a_parsed_prompt_is_analysed_and_raw_text_is_refused():
    analysis = analyze(parse("a cat left of a dog, a dog left of a bird, a bird left of the cat"))
    assert len(analysis.conflicts) == 1
    with pytest.raises(TypeError, match="analyze takes a SceneGraph"):
        analyze("a cat left of a dog")


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 7), st.sampled_from(["left_of", "right_of", "above", "below"]), st.randoms())
def test_random_cycles_are_always_found_and_broken(length, predicate, rng):
    nodes = [f"n{i}" for i in range(length)]
    rng.shuffle(nodes)
    relations = [(a, predicate, b, rng.uniform(0.5, 2.0)) for a, b in zip(nodes, nodes[1:] + nodes[:1], strict=False)]
    extra = [(a, "near", b) for a, b in itertools.combinations(nodes[:3], 2)]
    analysis = analyze(graph(relations + extra))
    assert len(analysis.conflicts) == 1 and len(analysis.conflicts[0].relations) == length
    dropped = analyze(graph(relations + extra), policy="drop")
    assert len(dropped.dropped) == 1
    lightest = min(relations, key=lambda r: r[3])
    assert dropped.dropped[0].relation.weight == pytest.approx(lightest[3])
    assert not analyze(dropped.graph).conflicts


def test_the_exact_cycle_search_is_bounded_and_says_when_it_was_not_used():
    import itertools
    import random

    generator = random.Random(0)
    objects, relations = [], []
    for group in range(5):  # five components of 16 edges among 6 objects each
        ids = [f"g{group}o{k}" for k in range(6)]
        objects += [{"id": i, "name": i} for i in ids]
        pairs = list(itertools.permutations(ids, 2))
        generator.shuffle(pairs)
        relations += [{"subject": a, "predicate": "left_of", "object": b} for a, b in pairs[:16]]
    dense = analyze(SceneGraph(objects=objects, relations=relations), policy="drop")
    assert not dense.exact and not analyze(dense.graph).conflicts  # greedy, still consistent
    assert analyze(graph(CYCLE), policy="drop").exact
