"""Fuzz counts per entry point: how many random inputs each answered, refused with a typed error,
failed with any other exception, or took too long on.

    python benchmarks/fuzz.py [--inputs 2000] [--json docs/results/fuzz.json]

Inputs mix spatial words, nouns, unicode digits and letters, lone surrogates, punctuation and
random characters (prompts) and random JSON (the loader). An untyped error or a hang is a defect.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from infsplign_scene import InfsplignError, SceneGraph, parse
from infsplign_scene.cli import main as cli
from infsplign_scene.parsing.llm import graph_from_reply

WORDS = (
    "a",
    "the",
    "cat",
    "dog",
    "red",
    "circle",
    "left",
    "of",
    "right",
    "above",
    "below",
    "near",
    "between",
    "and",
    ",",
    "it",
    "its",
    "on",
    "behind",
    "two",
    "²",
    "①",
    "İ",
    "which",
    "is",
    "to",
    "side",
    "next",
    "among",
    "there",
    ".",
    ";",
    "teddy",
    "bear",
    "traffic",
    "light",
    "top",
    "under",
    "\ud800",
    "\u202e",
    "\x00",
    "🐈",
)
HANG_SECONDS = 5.0


def random_prompt(rng: random.Random) -> str:
    if rng.random() < 0.3:
        return "".join(chr(rng.randrange(0x20, 0x2FFF)) for _ in range(rng.randrange(0, 200)))
    return " ".join(rng.choice(WORDS) for _ in range(rng.randrange(0, 40)))


def random_json(rng: random.Random, depth: int = 0):
    kind = rng.randrange(7 if depth < 4 else 4)
    if kind == 0:
        return rng.choice([None, True, 3, -1.5, 10**30])
    if kind in (1, 2, 3):
        return random_prompt(rng)[:20]
    if kind == 4:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["objects", "relations", "prompt", "id", "name", "subject", "object", "predicate", "weight", "span"]
    return {rng.choice(keys): random_json(rng, depth + 1) for _ in range(rng.randrange(4))}


def count(target: Callable[[object], object], inputs: list) -> dict:
    result = {"inputs": len(inputs), "answered": 0, "typed": 0, "untyped": 0, "hangs": 0, "untyped_examples": []}
    for item in inputs:
        started = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                target(item)
            result["answered"] += 1
        except InfsplignError:
            result["typed"] += 1
        except Exception as error:  # noqa: BLE001 - what this script counts
            result["untyped"] += 1
            if len(result["untyped_examples"]) < 5:
                result["untyped_examples"].append([repr(item)[:120], f"{type(error).__name__}: {error}"[:200]])
        result["hangs"] += time.perf_counter() - started > HANG_SECONDS
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    prompts = [random_prompt(rng) for _ in range(args.inputs)]
    documents = [json.dumps(random_json(rng)) for _ in range(args.inputs)]

    def command_line(text: str) -> None:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            status = cli(["check", "--", text])
        if status == 2:
            raise InfsplignError("exit status 2")
        if status not in (0, 1):
            raise RuntimeError(f"exit status {status}, outside the contract")

    parse("a cat left of a dog", backend="spacy")  # loads the spaCy model, which no input should be timed for
    targets = {
        "parse (rules)": (lambda t: parse(t, backend="rules"), prompts),
        "parse (spacy)": (lambda t: parse(t, backend="spacy"), prompts),
        "parse (auto, the default)": (lambda t: parse(t), prompts),
        "SceneGraph.load": (lambda t: SceneGraph.load("{" + t if not t.startswith("{") else t), documents),
        "LLM reply reader": (lambda t: graph_from_reply("a cat left of a dog", t), prompts + documents),
        "command line (check)": (command_line, prompts[: args.inputs // 4]),
    }
    results = {name: count(target, inputs) for name, (target, inputs) in targets.items()}
    print("| entry point | inputs | answered | typed error | untyped error | hangs |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, row in results.items():
        print(f"| {name} | {row['inputs']} | {row['answered']} | {row['typed']} | {row['untyped']} | {row['hangs']} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
