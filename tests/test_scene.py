import json

import pytest
from pydantic import ValidationError

from infsplign_scene import SceneGraph, SceneGraphError

CAT_DOG = {
    "prompt": "a black cat to the left of a dog, a lamp above the cat",
    "objects": [
        {"id": "cat", "name": "black cat", "noun": "cat", "attributes": ["black"], "count": 1},
        {"id": "dog", "name": "dog", "noun": "dog"},
        {"id": "lamp", "name": "lamp", "noun": "lamp"},
    ],
    "relations": [
        {"subject": "cat", "predicate": "left_of", "object": "dog", "weight": 1.0},
        {"subject": "lamp", "predicate": "above", "object": "cat", "weight": 1.0},
    ],
}


def test_issue_example_round_trips():
    graph = SceneGraph.model_validate(CAT_DOG)
    again = SceneGraph.model_validate_json(graph.model_dump_json())
    assert again == graph
    assert str(graph.relations[0]) == "cat left_of dog"


def test_prompt_is_written_when_absent_and_names_are_found():
    graph = SceneGraph(
        objects=[{"id": "a", "name": "red circle"}, {"id": "b", "name": "blue square"}, {"id": "c", "name": "lamp"}],
        relations=[{"subject": "a", "predicate": "right_of", "object": "b"}],
    )
    assert graph.prompt == "a red circle to the right of a blue square, a lamp"
    assert [graph.prompt[slice(*o.span)] for o in graph.objects] == ["red circle", "blue square", "lamp"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda g: g["objects"].append({"id": "cat", "name": "dog"}), "duplicate object id 'cat'"),
        (
            lambda g: g["relations"].append({"subject": "cat", "predicate": "above", "object": "owl"}),
            "unknown object 'owl'",
        ),
        (lambda g: g["relations"].append({"subject": "dog", "predicate": "near", "object": "dog"}), "to itself"),
        (lambda g: g["relations"][0].update(weight=float("inf")), "finite"),
        (lambda g: g["relations"][0].update(weight=0), "finite and > 0"),
        (lambda g: g["relations"][0].update(predicate="behind"), "supported predicates are left_of, right_of"),
        (lambda g: g["objects"][1].update(name="wolf"), "'wolf' does not occur in the prompt"),
        (lambda g: g["objects"].extend({"id": f"o{i}", "name": "dog"} for i in range(40)), "at most 32"),
    ],
)
def test_validation_errors_are_clear(change, message):
    data = json.loads(json.dumps(CAT_DOG))
    change(data)
    with pytest.raises(SceneGraphError, match=message):
        SceneGraph.load(data)
    with pytest.raises(ValidationError):
        SceneGraph.model_validate(data)


def test_predicate_spellings_are_normalised():
    data = json.loads(json.dumps(CAT_DOG))
    data["relations"][0]["predicate"] = "Left Of"
    assert SceneGraph.load(data).relations[0].predicate == "left_of"


def test_load_from_json_text_and_path(tmp_path):
    text = json.dumps(CAT_DOG)
    path = tmp_path / "g.json"
    path.write_text(text)
    assert SceneGraph.load(text) == SceneGraph.load(path) == SceneGraph.load(str(path))
    with pytest.raises(SceneGraphError, match="line 1"):
        SceneGraph.load("{not json")
    with pytest.raises(SceneGraphError, match="not found"):
        SceneGraph.load(tmp_path / "missing.json")


def test_schema_lists_the_contract_fields():
    schema = SceneGraph.model_json_schema()
    assert {"prompt", "objects", "relations"} <= set(schema["properties"])
    relation = schema["$defs"]["Relation"]
    assert relation["properties"]["predicate"]["enum"] == ["left_of", "right_of", "above", "below", "near"]


def test_a_prompt_naming_the_objects_only_keeps_relations_and_valid_spans():
    graph = SceneGraph.load(
        {
            "prompt": "a red circle left of an apple, the apple above a blue square",
            "objects": [
                {"id": "c", "name": "red circle"},
                {"id": "a", "name": "apple"},
                {"id": "s", "name": "blue square"},
            ],
            "relations": [
                {"subject": "c", "predicate": "left_of", "object": "a"},
                {"subject": "a", "predicate": "above", "object": "s"},
            ],
        }
    )
    named = graph.naming_objects_only()
    assert named.prompt == "a red circle and an apple and a blue square"
    assert [named.prompt[slice(*o.span)] for o in named.objects] == ["red circle", "apple", "blue square"]
    assert named.relations == graph.relations and graph.prompt.startswith("a red circle left of")
    assert SceneGraph.model_validate(named.model_dump()) == named  # the spans pass the graph's own check


def test_the_default_head_noun_keeps_compound_nouns_whole():
    graph = SceneGraph(
        objects=[{"id": "a", "name": "small traffic light"}, {"id": "b", "name": "big dog"}],
        relations=[{"subject": "a", "predicate": "above", "object": "b"}],
    )
    assert [o.noun for o in graph.objects] == ["traffic light", "dog"]
