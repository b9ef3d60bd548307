import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infsplign_scene import ParseError, SceneGraph
from infsplign_scene import parse as parse_any
from infsplign_scene.parsing import lex


def parse(text):
    return parse_any(text, backend="rules")


def relations(text):
    graph = parse(text)
    names = {o.id: o.name.lower() for o in graph.objects}
    return [(names[r.subject], r.predicate, names[r.object]) for r in graph.relations]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a cat left of a dog, a lamp above the cat", [("cat", "left_of", "dog"), ("lamp", "above", "cat")]),
        ("a cat on the left side of a dog", [("cat", "left_of", "dog")]),
        ("a cat at the left of a dog", [("cat", "left_of", "dog")]),
        ("a vase on the right of a cup", [("vase", "right_of", "cup")]),
        ("a balloon on the top of a giraffe", [("balloon", "above", "giraffe")]),
        ("a frog on the bottom of a suitcase", [("frog", "below", "suitcase")]),
        ("a mouse on side of a key", [("mouse", "near", "key")]),
        ("a bird atop a bench", [("bird", "above", "bench")]),
        ("a rug underneath a table", [("rug", "below", "table")]),
        ("a cup adjacent to a plate", [("cup", "near", "plate")]),
        ("a photo of a fork above a hair drier", [("fork", "above", "hair drier")]),
        ("a hot dog to the left of a dog", [("hot dog", "left_of", "dog")]),
        ("an orange above a person", [("orange", "above", "person")]),
        ("a teddy bear above a bear", [("teddy bear", "above", "bear")]),
        ("a mug, which sits to the right of a kettle", [("mug", "right_of", "kettle")]),
        ("above the bookshelf hangs a clock", [("clock", "above", "bookshelf")]),
        ("to the left of the sink there is a towel", [("towel", "left_of", "sink")]),
        ("a pen right of a notebook and below a lamp", [("pen", "right_of", "notebook"), ("pen", "below", "lamp")]),
        ("a moon above a cloud above a hill", [("cloud", "above", "hill"), ("moon", "above", "cloud")]),
        ("a car between a tree and a house", [("tree", "left_of", "car"), ("car", "left_of", "house")]),
        ("a car in the middle of banana and airplane.", [("banana", "left_of", "car"), ("car", "left_of", "airplane")]),
        ("a bench, and on its right a trash can", [("trash can", "right_of", "bench")]),
        ("A wooden park bench with a remote control on top of it.", [("remote control", "above", "wooden park bench")]),
        (
            "A sofa is to the right of a table. A plant is to the left of the table.",
            [("sofa", "right_of", "table"), ("plant", "left_of", "table")],
        ),
        (
            "Paint a sun above a mountain. Below the mountain, paint a river.",
            [("sun", "above", "mountain"), ("river", "below", "mountain")],
        ),
        ("a cat and a dog side by side", [("cat", "near", "dog")]),
        (
            "a person and chair on the right of a dog and beneath a banana.",
            [
                ("person", "right_of", "dog"),
                ("chair", "right_of", "dog"),
                ("person", "below", "banana"),
                ("chair", "below", "banana"),
            ],
        ),
        ("a cat left of a dog; the dog left of a bird", [("cat", "left_of", "dog"), ("dog", "left_of", "bird")]),
    ],
)
def test_phrasings_and_structures(text, expected):
    assert relations(text) == expected


def test_attributes_counts_and_repeated_nouns():
    graph = parse("two small red dogs near a big box, a small box left of the big box")
    dogs, big, small = graph.objects
    assert (dogs.noun, dogs.count, dogs.attributes, dogs.name) == ("dog", 2, ["small", "red"], "small red dogs")
    assert (big.id, small.id) == ("box", "box_2")
    assert [str(r) for r in graph.relations] == ["dog near box", "box_2 left_of box"]


def test_spans_point_into_the_prompt():
    graph = parse("a photo of a fire hydrant to the left of a cell phone")
    assert [graph.prompt[slice(*o.span)] for o in graph.objects] == ["fire hydrant", "cell phone"]
    assert graph.objects[0].noun == "fire hydrant"


def test_unsupported_relations_are_reported_not_forced():
    graph = parse("a cat behind a dog, a horse on a car")
    assert graph.relations == []
    assert [(u.phrase, u.subject, u.object) for u in graph.unsupported] == [
        ("behind", "cat", "dog"),
        ("on", "horse", "car"),
    ]
    assert graph.prompt[graph.unsupported[0].start : graph.unsupported[0].end] == "behind"


def test_relation_free_text_gives_objects_only():
    graph = parse("a red circle and a blue square")
    assert [o.name for o in graph.objects] == ["red circle", "blue square"] and graph.relations == []


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ("a cat left of", 13, "ends too early"),
        ("a cat left of left of a dog", 14, "unexpected 'left of'"),
        ("", None, "no object"),
        ("it is left of a dog", 0, "refers to nothing"),
    ],
)
def test_parse_errors_say_where_and_why(text, position, message):
    with pytest.raises(ParseError, match=message) as info:
        parse(text)
    if position is not None:
        assert info.value.position == position


def test_the_grammar_names_no_object_both():
    with pytest.raises(ParseError, match="'Both' stands for objects named before") as info:
        parse("a cat left of a dog. Both are below a lamp.")
    assert info.value.position == 21


def test_the_grammar_names_no_object_itself():
    with pytest.raises(ParseError, match="'itself' relates an object to itself"):
        parse("a cat next to itself")


def test_lexer_longest_match():
    kinds = [(t.kind, t.text) for t in lex("a cat to the left of a dog")]
    assert kinds == [("DET", "a"), ("WORD", "cat"), ("REL", "to the left of"), ("DET", "a"), ("WORD", "dog")]


NOUNS = ["cat", "dog", "fire hydrant", "hair drier", "cup", "teddy bear", "lamp", "cell phone", "kite", "vase"]
PREDICATES = ["left_of", "right_of", "above", "below", "near"]


@st.composite
def consistent_graphs(draw):
    """Random graphs whose relations follow a random total order per axis (so no cycles)."""
    count = draw(st.integers(2, 6))
    names = draw(st.permutations(NOUNS))[:count]
    x_rank = draw(st.permutations(range(count)))
    y_rank = draw(st.permutations(range(count)))
    pairs = draw(st.lists(st.tuples(st.integers(0, count - 1), st.integers(0, count - 1)), min_size=1, max_size=8))
    relations = []
    for a, b in pairs:
        if a == b:
            continue
        predicate = draw(st.sampled_from(PREDICATES))
        if predicate in ("left_of", "right_of"):
            predicate = "left_of" if x_rank[a] < x_rank[b] else "right_of"
        elif predicate in ("above", "below"):
            predicate = "above" if y_rank[a] < y_rank[b] else "below"
        relations.append({"subject": f"o{a}", "predicate": predicate, "object": f"o{b}"})
    objects = [{"id": f"o{i}", "name": name} for i, name in enumerate(names)]
    return SceneGraph(objects=objects, relations=relations or [{"subject": "o0", "predicate": "near", "object": "o1"}])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(consistent_graphs())
def test_written_graph_parses_back_to_the_same_relations(graph):
    parsed = parse(graph.prompt)
    assert parsed.triples() == graph.triples()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200), st.sampled_from(["rules", "auto"]))
def test_fuzzed_text_only_raises_parse_error(text, backend):
    with contextlib.suppress(ParseError):
        parse_any(text, backend=backend)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "a",
                "the",
                "cat",
                "dog",
                "left of",
                "above",
                "and",
                ",",
                "which",
                "it",
                "its",
                "between",
                "on its left",
                "there is",
                "side by side",
                "two",
                "red",
                "behind",
                ".",
                "a photo of",
                "is",
            ]
        ),
        max_size=14,
    )
)
def test_fuzzed_word_salad_only_raises_parse_error(words):
    try:
        graph = parse_any(" ".join(words))
    except ParseError:
        return
    assert isinstance(graph, SceneGraph)
