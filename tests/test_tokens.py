import pytest

from infsplign_scene import SceneGraph, TokenSpanError, VocabularyError, parse
from infsplign_scene.lab.shapes.model import build_tokenizer
from infsplign_scene.tokens import check_vocabulary, object_token_indices


def decoded(tokenizer, prompt, indices):
    ids = tokenizer(prompt, padding="max_length", max_length=77).input_ids
    return tokenizer.decode([ids[i] for i in indices]).strip()


def test_clip_splits_words_and_spans_follow(clip_tokenizer):
    graph = parse("a photo of a fire hydrant to the left of a surfboard")
    spans = object_token_indices(clip_tokenizer, graph, include_attributes=True)
    assert decoded(clip_tokenizer, graph.prompt, spans[0]) == "fire hydrant"
    assert decoded(clip_tokenizer, graph.prompt, spans[1]) == "surfboard"
    # CLIP splits "hydrant" into several tokens; word counting would misplace the surfboard
    assert len(spans[0]) >= 3
    assert spans[1][0] > spans[0][-1] + 4


def test_head_noun_rule_excludes_attributes(clip_tokenizer):
    graph = parse("a black cat to the left of a dog")
    noun_only = object_token_indices(clip_tokenizer, graph)
    whole = object_token_indices(clip_tokenizer, graph, include_attributes=True)
    assert decoded(clip_tokenizer, graph.prompt, noun_only[0]) == "cat"
    assert decoded(clip_tokenizer, graph.prompt, whole[0]) == "black cat"


def test_same_noun_twice_gets_different_spans(clip_tokenizer):
    graph = parse("a small box left of a big box")
    spans = object_token_indices(clip_tokenizer, graph, include_attributes=True)
    assert decoded(clip_tokenizer, graph.prompt, spans[0]) == "small box"
    assert decoded(clip_tokenizer, graph.prompt, spans[1]) == "big box"
    heads = object_token_indices(clip_tokenizer, graph)
    assert heads[0] != heads[1]


def test_hand_written_graph_without_spans_uses_occurrences_in_order(clip_tokenizer):
    graph = SceneGraph(
        prompt="a box and a box and a cat",
        objects=[{"id": "a", "name": "box"}, {"id": "b", "name": "box"}, {"id": "c", "name": "cat"}],
        relations=[{"subject": "a", "predicate": "left_of", "object": "b"}],
    )
    spans = object_token_indices(clip_tokenizer, graph)
    assert spans[0] != spans[1]
    assert decoded(clip_tokenizer, graph.prompt, spans[1]) == "box"


def test_missing_name_is_a_clear_error(clip_tokenizer):
    graph = SceneGraph(objects=[{"id": "cat", "name": "cat"}, {"id": "dog", "name": "dog"}])
    graph.objects[1].name = "wolf"  # edited after validation: the prompt no longer names it
    graph.objects[1].span = None
    with pytest.raises(TokenSpanError, match="'dog'.*'wolf'"):
        object_token_indices(clip_tokenizer, graph)


def test_past_the_77_token_limit(clip_tokenizer):
    filler = ", ".join(["a very very tall tree"] * 16)
    graph = parse(f"{filler}, a cat left of a dog")
    with pytest.raises(TokenSpanError, match="77-token limit"):
        object_token_indices(clip_tokenizer, graph, object_ids=["cat"])


def test_word_level_tokenizer_spans_and_unknown_words():
    tokenizer = build_tokenizer()
    graph = parse("a red circle to the left of a blue square")
    spans = object_token_indices(tokenizer, graph, include_attributes=True)
    assert decoded(tokenizer, graph.prompt, spans[0]) == "red circle"
    assert decoded(tokenizer, graph.prompt, spans[1]) == "blue square"
    with pytest.raises(VocabularyError, match="'dog'; the words it knows:.*circle"):
        check_vocabulary(tokenizer, "a red dog left of a blue square")
    with pytest.raises(
        VocabularyError, match=r"'cirle' \(did you mean 'circle'\?\), 'dog'; the nouns it knows: circle, square$"
    ):
        check_vocabulary(tokenizer, "a red cirle left of a dog", nouns=["square", "circle"])
    check_vocabulary(tokenizer, graph.prompt)
