"""The `multi_relation` built-in set: seeded scene graphs over COCO nouns, from one pair to four
objects, consistent and contradicting, for studying several relations at once on any model that
knows COCO objects (the embedded noun model included).

    python -m infsplign_scene.lab.sets.multi_relation   # rewrites multi_relation.jsonl.gz

Kinds (the id's prefix): `pair` (one relation, each predicate alike), `chain3` (a rel b, b rel c),
`star3` (a rel b, c rel b), `tree4` (four objects, three relations, no cycle), `cycle2` (a left of
b and b left of a, or the same on y) and `cycle3` (three relations around a cycle on one axis).
The consistent kinds can all hold at once; the cycles cannot, by construction.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np

from ...relations import PREDICATES, TABLE
from ...scene import SceneGraph
from ..nouns.glyphs import noun_classes

OUT = Path(__file__).with_name("multi_relation.jsonl.gz")
COUNTS = {"pair": 50, "chain3": 40, "star3": 40, "tree4": 40, "cycle2": 20, "cycle3": 20}


def graph_row(names: list[str], relations: list[tuple[int, str, int]]) -> dict:
    """A checked scene graph as JSON: objects o0, o1, ... named `names`, relations (a, predicate, b)."""
    objects = [{"id": f"o{k}", "name": name} for k, name in enumerate(names)]
    stated = [{"subject": f"o{a}", "predicate": p, "object": f"o{b}"} for a, p, b in relations]
    graph = SceneGraph(objects=objects, relations=stated)  # checked, and its prompt written
    return json.loads(graph.model_dump_json(exclude_none=True))


def build(seed: int = 0) -> list[dict]:
    """The rows {"id", "graph"} of the set, the same for a seed."""
    rng = np.random.default_rng(seed)
    nouns = [c.name for c in noun_classes() if c.coco]
    directional = [p for p in PREDICATES if TABLE[p].axis is not None]
    rows = []
    for kind, count in COUNTS.items():
        for n in range(count):
            size = {"pair": 2, "cycle2": 2, "chain3": 3, "star3": 3, "cycle3": 3, "tree4": 4}[kind]
            names = [str(nouns[i]) for i in rng.choice(len(nouns), size, replace=False)]

            def pick() -> str:
                return str(rng.choice(PREDICATES))

            if kind == "pair":
                relations = [(0, PREDICATES[n % len(PREDICATES)], 1)]
            elif kind == "chain3":
                relations = [(0, pick(), 1), (1, pick(), 2)]
            elif kind == "star3":
                relations = [(0, pick(), 1), (2, pick(), 1)]
            elif kind == "tree4":
                relations = [(k, pick(), int(rng.integers(0, k))) for k in range(1, 4)]
            elif kind == "cycle2":
                predicate = str(rng.choice(directional))
                relations = [(0, predicate, 1), (1, predicate, 0)]
            else:
                predicate = str(rng.choice(directional))
                relations = [(0, predicate, 1), (1, predicate, 2), (2, predicate, 0)]
            rows.append({"id": f"{kind}-{n:03d}", "graph": graph_row(names, relations)})
    return rows


def write_set(path: Path, rows: list[dict]) -> None:
    """Write a built-in set: compressed JSONL, byte for byte the same for the same rows."""
    lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    path.write_bytes(gzip.compress(lines.encode("utf-8"), mtime=0))
    print(f"wrote {path} ({len(rows)} rows)")


def main() -> None:
    write_set(OUT, build())


if __name__ == "__main__":
    main()
