"""Free-form phrasings that public prompts use, on every backend that reads them, and the accuracy
floor on the public free-form set (tests/data/freeform_public.jsonl, dev split)."""

import importlib.util
import warnings
from pathlib import Path

import pytest

from infsplign_scene import parse
from infsplign_scene.errors import ParseWarning
from infsplign_scene.parsing.shared import placement_relations

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "parser_eval.py"
has_spacy = importlib.util.find_spec("spacy") is not None
BACKENDS = ["rules", "auto", pytest.param("spacy", marks=pytest.mark.skipif(not has_spacy, reason="needs spaCy"))]


def relations(text: str, backend: str) -> set[tuple[str, str, str]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParseWarning)
        graph = parse(text, backend=backend)
    nouns = {o.id: o.noun for o in graph.objects}
    return {(nouns[r.subject], r.predicate, nouns[r.object]) for r in graph.relations}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a fox on the left and a goose on the right", {("fox", "left_of", "goose")}),
        # the same name placed again is another object: two men, not one placed twice
        ("a man on the left and a man on the right", {("man", "left_of", "man")}),
        ("two teddy bears left of a bed", {("teddy bear", "left_of", "bed")}),
        # "it" after "X with" is X on every backend, whatever the phrase before it
        (
            "a table with a bowl on top and a chair on the right side of it",
            {("bowl", "above", "table"), ("chair", "right_of", "table")},
        ),
        # "them" with no plural object before it names the two objects named last, on every backend
        (
            "a cat sits on the left of a dog while a bird flies above them",
            {("cat", "left_of", "dog"), ("bird", "above", "cat"), ("bird", "above", "dog")},
        ),
        # a degree before a relation phrase is no part of the name before it
        ("a cat directly below a lamp", {("cat", "below", "lamp")}),
        ("a ball slightly to the left of a box", {("ball", "left_of", "box")}),
        ("a kite high above a house", {("kite", "above", "house")}),
        # "his", "her" and "their" name sides as "its" does
        ("a man with a river to his left", {("river", "left_of", "man")}),
        (
            "a woman stands by a tree, and a dog sits to her right",
            {("woman", "near", "tree"), ("dog", "right_of", "woman")},
        ),
        (
            "A cozy living room with a fireplace on the left wall and a large window on the right.",
            {("fireplace", "left_of", "window")},
        ),
        ("A photo of a scene with a bowl on the bottom and a cup on the top", {("cup", "above", "bowl")}),
        (
            "a truck with a horse on the left and a dog on the right",
            {("horse", "left_of", "truck"), ("dog", "right_of", "truck")},
        ),
        (
            "a truck with a horse on its left and a dog on its right",
            {("horse", "left_of", "truck"), ("dog", "right_of", "truck")},
        ),
        ("a lamp on the sofa's right", {("lamp", "right_of", "sofa")}),
        ("a lamp to the sofa's left side", {("lamp", "left_of", "sofa")}),
        ("a dog to the cat's left", {("dog", "left_of", "cat")}),
        ("a vase with flowers next to a clock", {("vase", "near", "clock")}),
        ("a moon above a cloud above a hill", {("moon", "above", "cloud"), ("cloud", "above", "hill")}),
    ],
)
def test_placements_sides_and_chains(text, expected, backend):
    assert relations(text, backend) == expected


@pytest.mark.skipif(not has_spacy, reason="needs spaCy")
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A paper stop sign next to a pair of scissors", {("stop sign", "near", "scissors")}),
        ("A horse grazing next to a pile of rocks.", {("horse", "near", "rock")}),
        ("A dog laying on a rug under a chair.", {("dog", "below", "chair")}),
        ("a child eating a birthday cake near some bushes", {("child", "near", "bush")}),
        (
            "A dog stands in the grass next to a hat, a book and a blanket.",
            {("dog", "near", n) for n in ("hat", "book", "blanket")},
        ),
        ("a cat left of a dog and a lamp above the cat", {("cat", "left_of", "dog"), ("lamp", "above", "cat")}),
        (
            "There are two bears on a bicycle. There is a fence. There is grass under them.",
            {("grass", "below", "bear")},
        ),
        ("A map of a city. It is next to a glass.", {("map", "near", "glass")}),
    ],
)
def test_free_text_attachment(text, expected):
    assert relations(text, "spacy") == expected


def test_corners_place_on_both_axes():
    placed = [("a", "top left"), ("b", "bottom right"), ("c", "middle"), ("d", "top")]
    assert placement_relations(placed) == [
        ("a", "left_of", "b"),
        ("a", "above", "b"),
        ("a", "left_of", "c"),
        ("a", "above", "c"),
        ("c", "left_of", "b"),
        ("c", "above", "b"),
        ("d", "above", "b"),
        ("d", "above", "c"),
    ]  # a and d share the top: nothing between them


@pytest.mark.parametrize("backend", BACKENDS)
def test_corner_phrases(backend):
    text = "a cat at the top-left and a dog in the lower right corner"
    assert relations(text, backend) == {("cat", "left_of", "dog"), ("cat", "above", "dog")}


def test_placements_relate_opposite_sides_only():
    placed = [("a", "left"), ("b", "right"), ("c", "top"), ("d", "middle"), ("e", "left")]
    assert placement_relations(placed) == [
        ("a", "left_of", "b"),
        ("a", "left_of", "d"),
        ("d", "left_of", "b"),
        ("e", "left_of", "b"),
        ("c", "above", "d"),
        ("e", "left_of", "d"),
    ]


@pytest.mark.skipif(not has_spacy, reason="needs spaCy")
def test_public_free_form_dev_accuracy_floor():
    """The floor sits just under the accuracy measured when these rules were written (docs/scene-graphs.md)."""
    spec = importlib.util.spec_from_file_location("parser_eval", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # the default backend only: it runs the dependency parse on most of these prompts (the spaCy
    # backend's own accuracy is in the benchmark's table)
    (row,) = module.evaluate(Path("."), ("auto",), ("free-form public (dev)",))
    assert row["prompts"] == 688
    assert row["accuracy"] >= 0.92, row["failures"]
