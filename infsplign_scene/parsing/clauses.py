"""The rules backend's second stage: phrase tokens -> clause tree, by the Lark LALR(1) grammar
`grammar/prompt.lark`; a text the grammar cannot read is a `ParseError` at its position."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.lexer import Lexer

from ..errors import ParseError
from ..lexicon import grammar_dir
from .lexer import PhraseToken, lex

_TERMINAL_NAMES = {
    "WORD": "an object name",
    "DET": "an article",
    "PRON": "a pronoun",
    "REL": "a relation such as 'left of'",
    "PREL": "a relation such as 'to its left'",
    "PLACE": "a place such as 'on the left'",
    "BETWEEN": "'between'",
    "AND": "'and'",
    "SEP": "a comma or full stop",
    "$END": "the end of the text",
}


class _TokenFeed(Lexer):
    """Hands the pre-lexed phrase tokens to Lark."""

    def __init__(self, lexer_conf) -> None:  # noqa: ANN001 - Lark's signature
        pass

    def lex(self, data: list[PhraseToken], parser_state=None) -> Iterator[Token]:  # noqa: ANN001
        for item in data:
            yield Token(item.kind, item, start_pos=item.start, end_pos=item.end)


@cache
def _lark() -> Lark:
    grammar = (grammar_dir() / "prompt.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", lexer=_TokenFeed)


def _describe_expected(expected: set[str]) -> str:
    names = sorted({_TERMINAL_NAMES.get(name, name.lower()) for name in expected})
    return ", ".join(names[:4])


def parse_clauses(text: str) -> Tree:
    """Lex `text` and parse its phrase tokens into the grammar's clause tree."""
    tokens = lex(text)
    if not any(t.kind == "WORD" for t in tokens):
        raise ParseError("no object is named in the text", text, 0)
    try:
        tree = _lark().parse(tokens)
    except UnexpectedToken as error:
        token = error.token
        if token.type == "$END":
            raise ParseError(
                f"the text ends too early: expected {_describe_expected(error.expected)}", text, len(text.rstrip())
            ) from None
        phrase: PhraseToken = token.value
        raise ParseError(
            f"unexpected {phrase.text!r}: expected {_describe_expected(error.expected)}", text, phrase.start
        ) from None
    except (UnexpectedEOF, UnexpectedInput) as error:
        raise ParseError(f"cannot parse the text: {error}", text, len(text)) from None
    return tree
