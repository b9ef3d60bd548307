"""Find each object's token positions in the prompt through the pipeline's own tokenizer.

Character offsets, not word counts: the tokens of a span [start, end) are those between the
token count of `prompt[:start]` and that of `prompt[:end]` (plus the start token). This holds
for every tokenizer that splits on whitespace before sub-word merges (CLIP BPE, WordPiece,
word-level), and handles words CLIP splits ("hydrant"), multi-word names and repeated nouns.

Rule for attributes: by default only the head noun's tokens stand for the object ("cat" in
"black cat"), as in the InfSplign paper; `include_attributes=True` uses the whole name.
"""

from __future__ import annotations

import difflib
import re

import torch

from .compile import Objective
from .errors import TokenSpanError, VocabularyError, quoted
from .scene import SceneGraph, SceneObject, name_occurrences


def _count_tokens(tokenizer, text: str) -> int:
    if not text.strip():
        return 0
    return len(tokenizer(text, add_special_tokens=False).input_ids)


def name_span(prompt: str, obj: SceneObject, taken: set[tuple[int, int]]) -> tuple[int, int]:
    """Character span of an object's name: its explicit span, else its first free occurrence."""
    if obj.span is not None:
        return obj.span
    for span in name_occurrences(prompt, obj.name):
        if span not in taken:
            return span
    raise TokenSpanError(f"object {obj.id!r}: its name {obj.name!r} does not occur in the prompt {quoted(prompt)}")


def head_span(prompt: str, obj: SceneObject, span: tuple[int, int]) -> tuple[int, int]:
    """The last len(noun) words of the name's span: "cat" in "black cat", "dogs" in "dogs"."""
    noun_words = len((obj.noun or obj.name).split())
    words = list(re.finditer(r"\S+", prompt[span[0] : span[1]]))
    first = words[max(0, len(words) - noun_words)]
    return span[0] + first.start(), span[1]


def object_token_indices(
    tokenizer, graph: SceneGraph, object_ids: list[str] | None = None, include_attributes: bool = False
) -> list[list[int]]:
    """Token positions (in the padded input ids, start token at 0) of each object.

    Raises `TokenSpanError` when a name is missing or falls past the tokenizer's length limit.
    """
    prompt = graph.prompt or ""
    limit = getattr(tokenizer, "model_max_length", 77)
    limit = 77 if limit is None or limit > 10_000 else limit
    has_start = (
        bool(tokenizer("x").input_ids[:1] == [tokenizer.bos_token_id]) if tokenizer.bos_token_id is not None else False
    )
    offset = 1 if has_start else 0
    ids = object_ids if object_ids is not None else [o.id for o in graph.objects]
    taken: set[tuple[int, int]] = {o.span for o in graph.objects if o.span is not None}
    result = []
    for object_id in ids:
        obj = graph.object_by_id(object_id)
        span = name_span(prompt, obj, taken)
        taken.add(span)
        start, end = span if include_attributes else head_span(prompt, obj, span)
        first = offset + _count_tokens(tokenizer, prompt[:start])
        last = offset + _count_tokens(tokenizer, prompt[:end])
        if last <= first:
            raise TokenSpanError(f"object {obj.id!r}: {prompt[start:end]!r} produced no tokens")
        if last > limit - 1:  # the end token takes the last position
            raise TokenSpanError(
                f"object {obj.id!r} ({obj.name!r}) falls at tokens {first}-{last - 1}, past the "
                f"{limit}-token limit of the text encoder; shorten the prompt or mention it earlier"
            )
        result.append(list(range(first, last)))
    return result


def check_vocabulary(tokenizer, prompt: str, nouns: list[str] | None = None) -> None:
    """Raise `VocabularyError` when a word-level tokenizer maps words of the prompt to its unknown
    token: it names the unknown words, suggests the nearest known word for each, and lists the
    model's `nouns` (a preset's list; else every word it knows)."""
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is None:
        return
    words = re.findall(r"[\w']+|[^\w\s]", prompt)
    unknown = list(dict.fromkeys(w for w in words if tokenizer(w, add_special_tokens=False).input_ids == [unk]))
    if not unknown:
        return
    known = sorted(w for w in tokenizer.get_vocab() if re.fullmatch(r"[a-z][a-z']*", w))
    listed = sorted(nouns) if nouns else known
    hints = []
    for word in unknown:
        close = difflib.get_close_matches(word.lower(), listed, n=1) or difflib.get_close_matches(
            word.lower(), known, n=1
        )
        hints.append(f"{word!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    what = "nouns" if nouns else "words"
    raise VocabularyError(
        f"the model does not know the word(s) {', '.join(hints)}; the {what} it knows: {', '.join(listed)}"
    )


def object_token_matrix(
    tokenizer, objective: Objective, include_attributes: bool = False, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """The averaging matrix [B, K, T] from the captured token columns to each object's map, and
    the columns [T] (token positions) to capture: object k of image b is the mean of its tokens."""
    spans = [
        object_token_indices(tokenizer, graph, ids, include_attributes=include_attributes)
        for graph, ids in zip(objective.graphs, objective.object_ids, strict=True)
    ]
    columns = sorted({index for graph_spans in spans for span in graph_spans for index in span})
    position = {column: j for j, column in enumerate(columns)}
    matrix = torch.zeros(len(spans), max(objective.num_objects, 1), max(len(columns), 1))
    for b, graph_spans in enumerate(spans):
        for k, span in enumerate(graph_spans):
            for index in span:
                matrix[b, k, position[index]] = 1.0 / len(span)
    return matrix.to(device), torch.tensor(columns, dtype=torch.long, device=device)
