"""Exact relation-set accuracy of the parser on public prompt sets.

    python benchmarks/parser_accuracy.py [--shared ../shared/benchmarks] [--markdown docs/parser_accuracy.md]

A prompt counts as correct when the parsed relation set equals the gold set exactly: objects
matched by name (lower case), inverse predicates normalised (right_of -> left_of, below -> above).
Gold comes from each set's own metadata (SR2D, GenEval, HRS-Bench) or, for T2I-CompBench, from
its fixed template "a X <rel> a Y" split on the set's seven relation phrases.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from infsplign_scene import ParseError, parse
from infsplign_scene.scene import canonical_triple

Triples = frozenset

SR2D_RELATIONS = {"to the left of": "left_of", "to the right of": "right_of", "above": "above", "below": "below"}
GENEVAL_RELATIONS = {"left of": "left_of", "right of": "right_of", "above": "above", "below": "below"}
HRS_RELATIONS = {
    "on the left of": "left_of",
    "on the right of": "right_of",
    "above": "above",
    "over": "above",
    "below": "below",
    "under": "below",
    "beneath": "below",
}
T2I_RELATIONS = {
    "on the left of": "left_of",
    "on the right of": "right_of",
    "on the top of": "above",
    "on the bottom of": "below",
    "on side of": "near",
    "next to": "near",
    "near": "near",
}


def triples(items: list[tuple[str, str, str]]) -> Triples:
    return frozenset(canonical_triple(a.lower(), p, b.lower()) for a, p, b in items)


def sr2d(root: Path) -> Iterator[tuple[str, Triples]]:
    for item in json.loads((root / "visor_sr2d" / "text_spatial_rel_phrases.json").read_text()):
        if item["rel_type"] in SR2D_RELATIONS:
            gold = [(item["obj_1_attributes"][0], SR2D_RELATIONS[item["rel_type"]], item["obj_2_attributes"][0])]
            yield item["text"], triples(gold)


def geneval(root: Path) -> Iterator[tuple[str, Triples]]:
    for line in (root / "geneval" / "evaluation_metadata.jsonl").read_text().splitlines():
        item = json.loads(line)
        if item["tag"] != "position":
            continue
        include = item["include"]
        gold = []
        for entry in include:
            if "position" in entry:
                relation, reference = entry["position"]
                gold.append((entry["class"], GENEVAL_RELATIONS[relation], include[reference]["class"]))
        yield item["prompt"], triples(gold)


def hrs(root: Path) -> Iterator[tuple[str, Triples]]:
    """Only prompts whose relations the five predicates express ('on' means contact: left out)."""
    with open(root / "hrs_bench" / "synthetic_spatial_relation_prompts.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            objects = [row[f"obj{i}"] for i in range(1, 5) if row[f"obj{i}"]]
            rels = [r for r in (row["rel1"], row["rel2"]) if r]
            ternary = {"between", "among", "in the middle of"}
            if any(r not in HRS_RELATIONS and r not in ternary for r in rels):
                continue
            gold = []
            if rels[0] in ternary:
                subjects, (left, right) = objects[:-2], objects[-2:]
                for subject in subjects:
                    if rels[0] == "among":
                        gold += [(subject, "near", left), (subject, "near", right)]
                    else:
                        gold += [(left, "left_of", subject), (subject, "left_of", right)]
            else:
                subjects = objects[: len(objects) - len(rels)]
                for relation, reference in zip(rels, objects[len(subjects) :], strict=False):
                    gold += [(subject, HRS_RELATIONS[relation], reference) for subject in subjects]
            yield row["meta_prompt"], triples(gold)


def t2i_compbench(root: Path) -> Iterator[tuple[str, Triples]]:
    pattern = re.compile(r"^an? (.+?) (" + "|".join(map(re.escape, T2I_RELATIONS)) + r") an? (.+?)\.?$")
    for line in (root / "t2i_compbench" / "spatial.txt").read_text().splitlines():
        match = pattern.match(line.strip())
        if match:
            yield line.strip(), triples([(match[1], T2I_RELATIONS[match[2]], match[3])])


SETS: dict[str, Callable[[Path], Iterator[tuple[str, Triples]]]] = {
    "SR2D (VISOR)": sr2d,
    "GenEval position": geneval,
    "HRS-Bench spatial (expressible)": hrs,
    "T2I-CompBench 2D spatial": t2i_compbench,
}


def parsed_triples(text: str) -> Triples | None:
    try:
        graph = parse(text)
    except ParseError:
        return None
    names = {o.id: o.name.lower() for o in graph.objects}
    return triples([(names[r.subject], r.predicate, names[r.object]) for r in graph.relations])


def evaluate(root: Path) -> list[dict]:
    rows = []
    for name, loader in SETS.items():
        items = list(loader(root))
        started = time.perf_counter()
        results = [(text, gold, parsed_triples(text)) for text, gold in items]
        seconds = time.perf_counter() - started
        correct = sum(gold == got for _, gold, got in results)
        failures = [
            (text, sorted(gold), sorted(got) if got is not None else "ParseError")
            for text, gold, got in results
            if gold != got
        ]
        rows.append(
            {
                "set": name,
                "prompts": len(items),
                "correct": correct,
                "accuracy": correct / max(len(items), 1),
                "seconds": seconds,
                "failures": failures[:5],
            }
        )
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| set | prompts | exact | accuracy | parse time (s) |", "|---|---:|---:|---:|---:|"]
    for row in rows:
        cells = [row["set"], row["prompts"], row["correct"], f"{100 * row['accuracy']:.2f}%", f"{row['seconds']:.2f}"]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "benchmarks")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    parser.add_argument("--json", type=Path, help="write the full results (with sample failures) as JSON")
    args = parser.parse_args()
    rows = evaluate(args.shared)
    table = markdown(rows)
    print(table)
    for row in rows:
        for failure in row["failures"]:
            print(f"  {row['set']}: {failure}")
    if args.markdown:
        args.markdown.write_text(table + "\n")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
