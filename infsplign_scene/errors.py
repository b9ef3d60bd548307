"""Typed errors. Every error a user can trigger by bad input derives from `InfsplignError`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


QUOTE_WIDTH = 80


def quote(text: str, position: int | None = None, width: int = QUOTE_WIDTH) -> tuple[str, int | None]:
    """At most `width` characters of `text` around `position` (with "..." where cut), and the
    position within the quote: errors never echo a long input whole, nor characters that cannot be
    printed (lone surrogates are escaped)."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8") if not _encodable(text) else text
    if len(text) <= width:
        return text, position
    center = position if position is not None else 0
    start = max(0, min(center - width // 2, len(text) - width))
    window = text[start : start + width]
    prefix, suffix = ("..." if start > 0 else ""), ("..." if start + width < len(text) else "")
    return prefix + window + suffix, None if position is None else position - start + len(prefix)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def quoted(text: str) -> str:
    """`text` in quotes, shortened as `quote` does."""
    return repr(quote(text)[0])


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
            shown, at = quote(text.replace("\n", " "), position)
            pointer = " " * (at or 0) + "^"
            message = f"{message} (at character {position})\n  {shown}\n  {pointer}"
        super().__init__(message)


class ParseWarning(UserWarning):
    """Text was parsed, but not all of it: a spatial phrase no predicate expresses, or no relation at all."""


class ConflictError(InfsplignError, ValueError):
    """The graph contains contradicting relations and the policy is `error`."""

    def __init__(self, message: str, cycles: list | None = None) -> None:
        self.cycles = cycles or []
        super().__init__(message)


class TokenSpanError(InfsplignError, ValueError):
    """An object's name cannot be located in the prompt's tokens."""


class NonFiniteError(InfsplignError, ValueError):
    """Sampling produced non-finite latents; `images` are the indices of the images concerned."""

    def __init__(self, message: str, images: list[int]) -> None:
        self.images = images
        super().__init__(message)


class VocabularyError(InfsplignError, ValueError):
    """A prompt uses words the model's tokenizer does not know."""


class ConfigError(InfsplignError, ValueError):
    """A setting (guidance, sampling, preset) is out of range or inconsistent with another.

    `problems`: (field, message) pairs, the field dotted (`guidance.eta`)."""

    def __init__(self, message: str, problems: list[tuple[str, str]] | None = None) -> None:
        self.problems = problems or []
        super().__init__(message)


def validation_problems(error: ValidationError) -> list[tuple[str, str]]:
    """(dotted field, message) per problem; a nested settings error keeps its own fields."""
    problems = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"])
        nested = item.get("ctx", {}).get("error")
        if isinstance(nested, ConfigError) and nested.problems:
            problems += [(f"{location}.{field}" if location else field, text) for field, text in nested.problems]
        else:
            problems.append((location, item["msg"].removeprefix("Value error, ")))
    return problems


def format_validation_error(error: ValidationError, what: str) -> str:
    """One line per problem, each naming the field: "invalid scene graph:\n  objects.0.id: ..."."""
    lines = [f"{location or what}: {message}" for location, message in validation_problems(error)]
    return f"invalid {what}:\n  " + "\n  ".join(lines)
