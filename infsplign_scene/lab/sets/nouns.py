"""The embedded noun model's benchmark sets (built-in, usable by name with `generate`):

- `nouns_pairs`: 200 graphs of two distinct classes and one directional relation (50 per predicate);
- `nouns_triples`: 200 graphs of three distinct classes and two relations (a chain or a star);
- `mission`: the project's headline prompt, one row (run it with --images-per-prompt 32);
- `sr2d_nouns`: 500 SR2D prompts whose two objects the noun model knows, evenly spaced over
  SR2D's order, with SR2D's ids (for the VISOR protocol).

    python -m infsplign_scene.lab.sets.nouns   # rewrites the four .jsonl.gz files

The classes are drawn from all the model's classes (`lab/nouns/classes.json`), by their names.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np

from ...parsing import parse
from ...relations import PREDICATES, TABLE
from ..nouns.glyphs import noun_classes
from .multi_relation import graph_row, write_set

SETS_DIR = Path(__file__).parent
MISSION = "a cat left of a dog, a lamp above the cat"
SR2D_ROWS = 500
DIRECTIONAL = [p for p in PREDICATES if TABLE[p].axis is not None]


def pairs(seed: int = 0, count: int = 200) -> list[dict]:
    rng = np.random.default_rng([seed, 2])
    names = [c.name for c in noun_classes()]
    rows = []
    for n in range(count):
        a, b = (names[i] for i in rng.choice(len(names), 2, replace=False))
        rows.append({"id": f"pair-{n:03d}", "graph": graph_row([a, b], [(0, DIRECTIONAL[n % len(DIRECTIONAL)], 1)])})
    return rows


def triples(seed: int = 0, count: int = 200) -> list[dict]:
    rng = np.random.default_rng([seed, 3])
    names = [c.name for c in noun_classes()]
    rows = []
    for n in range(count):
        chosen = [names[i] for i in rng.choice(len(names), 3, replace=False)]
        first, second = (str(p) for p in rng.choice(DIRECTIONAL, 2))
        # a chain (a rel b, b rel c) or a star (a rel b, c rel b): two relations always satisfiable
        relations = [(0, first, 1), (1, second, 2)] if n % 2 == 0 else [(0, first, 1), (2, second, 1)]
        rows.append({"id": f"{'chain' if n % 2 == 0 else 'star'}-{n:03d}", "graph": graph_row(chosen, relations)})
    return rows


def sr2d_known(rows: int = SR2D_ROWS) -> list[dict]:
    """SR2D prompts whose objects all name a class or synonym of the noun model, evenly spaced."""
    known = {form for c in noun_classes() for form in (c.name, *c.synonyms)}
    with gzip.open(SETS_DIR / "sr2d.jsonl.gz", "rt", encoding="utf-8") as lines:
        sr2d = [json.loads(line) for line in lines]
    usable = [row for row in sr2d if all(o.name in known for o in parse(row["prompt"]).objects)]
    step = len(usable) / rows
    return [usable[int(k * step)] for k in range(rows)]


def build() -> dict[str, list[dict]]:
    return {
        "nouns_pairs": pairs(),
        "nouns_triples": triples(),
        "mission": [{"id": "mission", "prompt": MISSION}],
        "sr2d_nouns": sr2d_known(),
    }


def main() -> None:
    for name, rows in build().items():
        write_set(SETS_DIR / f"{name}.jsonl.gz", rows)


if __name__ == "__main__":
    main()
