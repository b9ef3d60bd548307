"""Typed errors. Every error a user can trigger by bad input derives from `InfsplignError`."""

from __future__ import annotations


class InfsplignError(Exception):
    """Base class of every error raised on bad input."""


class SceneGraphError(InfsplignError, ValueError):
    """A scene graph is malformed (unknown id, self relation, bad weight, ...)."""


class ParseError(InfsplignError, ValueError):
    """Text could not be parsed. `position` is the character offset of the problem."""

    def __init__(self, message: str, text: str = "", position: int | None = None) -> None:
        self.text = text
        self.position = position
        self.reason = message
        if position is not None and text:
            pointer = " " * position + "^"
            message = f"{message} (at character {position})\n  {text}\n  {pointer}"
        super().__init__(message)


class ConflictError(InfsplignError, ValueError):
    """The graph contains contradicting relations and the policy is `error`."""

    def __init__(self, message: str, cycles: list | None = None) -> None:
        self.cycles = cycles or []
        super().__init__(message)


class TokenSpanError(InfsplignError, ValueError):
    """An object's name cannot be located in the prompt's tokens."""


class VocabularyError(InfsplignError, ValueError):
    """A prompt uses words the model's tokenizer does not know."""
