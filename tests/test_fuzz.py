"""Bounded fuzzing: whatever the input, every entry point answers or raises a typed error, quickly."""

import contextlib
import json
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infsplign_scene import InfsplignError, SceneGraph, parse
from infsplign_scene.cli import main
from infsplign_scene.parsing.llm import LLMError, graph_from_reply


def fuzz_script():
    """benchmarks/fuzz.py, loaded as a module."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "fuzz.py"
    spec = importlib.util.spec_from_file_location("fuzz_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# prompts: spatial words and nouns mixed with any unicode, so that parsers get past their first step
WORDS = st.sampled_from(fuzz_script().WORDS)  # the fuzz benchmark's words
PROMPTS = st.one_of(st.text(max_size=200), st.lists(st.one_of(WORDS, st.text(max_size=5)), max_size=30).map(" ".join))
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)


def typed_or_graph(call) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.suppress(InfsplignError):
            assert isinstance(call(), SceneGraph)


@FUZZ
@given(PROMPTS)
def test_rules_backend(text):
    typed_or_graph(lambda: parse(text, backend="rules"))


@pytest.mark.parametrize("backend", ["spacy", "auto"])
def test_spacy_and_auto_backends(backend):
    pytest.importorskip("spacy")
    from infsplign_scene.parsing.dependency import load_nlp

    try:
        load_nlp()
    except InfsplignError:
        pytest.skip("no spaCy model installed")

    @FUZZ
    @given(PROMPTS)
    def check(text):
        typed_or_graph(lambda: parse(text, backend=backend))

    check()


@FUZZ
@given(
    st.one_of(
        JSON_VALUES.map(json.dumps),
        st.text(max_size=300),
        st.dictionaries(
            st.sampled_from(["objects", "relations", "prompt", "unsupported"]), JSON_VALUES, max_size=4
        ).map(json.dumps),
    )
)
def test_json_loader(text):
    typed_or_graph(lambda: SceneGraph.load(text if text.lstrip().startswith("{") else "{" + text))


@FUZZ
@given(st.text(max_size=400))
def test_llm_reply_reader(reply):
    with contextlib.suppress(LLMError):
        graph_from_reply("a red circle to the left of a blue square", reply)


@settings(max_examples=25, deadline=None)
@given(PROMPTS, st.sampled_from(["parse", "check"]))
def test_command_line(text, command):
    assert main([command, "--", text]) in (0, 1, 2)
