"""Score a `generate` run: find the objects, judge the relations, summarise by arm.

    infsplign-scene score DIR [--detector shapes | owlvit --detector-path PATH]

Per image (`scores.jsonl`, resumable like `generate`): which objects were found, each relation's
outcome between found objects (`relations.holds` on the boxes), whether all objects and relations
are right. Per arm (`summary.json`, `summary.md`):

- the VISOR protocol (microsoft/VISOR, visor.py), over images of two objects and one relation:
  OA (both objects found), VISOR_cond (relation right among those), VISOR_uncond (= VISOR_cond x
  OA), VISOR_1..4 (prompts with at least 1..4 images whose objects and relation are right);
- multi-relation scores: per-relation accuracy among found pairs, all satisfied, by predicate and
  by graph size (objects), with 95% bootstrap intervals over prompts;
- GenEval's position rule (djghosh13/geneval): an image is right when every object is found and
  every relation holds by GenEval's `relative_position` (images with `near` are left out);
- T2I-CompBench's 2D spatial score (UniDet_eval/2D_spatial_eval.py): per relation, a quarter of
  each object's detection confidence plus half its soft position score, 0 under 0.5; the mean
  over an image's relations, then over images;
- guided against unguided on the same seeds: relations fixed and broken;
- by the rows' kind (when the set names one) and arm: object accuracy, the share of the largest
  consistent subset of relations satisfied (a 3-cycle can have at most 2 of its 3 relations true,
  so an image with 2 scores 1.0) and all satisfied, with 95% intervals; and the differences
  between arms on the same images (`arm_differences`).

Each row keeps the boxes and confidences, so every rule is computed from the same detections.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from ..analysis import analyze
from ..errors import InfsplignError
from ..relations import geneval_holds, holds, t2i_compbench_position
from ..scene import SceneGraph
from .detectors import Detector, Found
from .generate import manifest_rows, read_rows

BOOTSTRAP_SAMPLES = 1000


def score_image(detector: Detector, image: Image.Image, graph: SceneGraph) -> dict:
    """One image's detections and relation outcomes (None where an object is missing) by our
    judge and by GenEval's, and its T2I-CompBench score."""
    located = detector.locate(image, graph)
    outcomes, geneval, t2i = [], [], []
    for relation in graph.relations:
        subject, obj = located.get(relation.subject), located.get(relation.object)
        both = subject is not None and obj is not None
        outcomes.append(holds(subject.box, obj.box, relation.predicate) if both else None)
        geneval.append(geneval_holds(subject.box, obj.box, relation.predicate) if both else None)
        t2i.append(t2i_compbench_score(subject, obj, relation.predicate))
    found = {object_id: place is not None for object_id, place in located.items()}
    counts = {obj.id: obj.count for obj in graph.objects}
    return {
        "found": found,
        "duplicated": sorted(i for i, place in located.items() if place is not None and place.instances > counts[i]),
        "boxes": {object_id: None if place is None else list(place.box) for object_id, place in located.items()},
        "confidences": {object_id: None if place is None else place.score for object_id, place in located.items()},
        "relations": [str(r) for r in graph.relations],
        "predicates": [r.predicate for r in graph.relations],
        "outcomes": outcomes,
        "all_found": all(found.values()),
        "all_satisfied": all(found.values()) and all(o is True for o in outcomes),
        "geneval": geneval,
        "t2i_compbench": float(np.mean(t2i)) if t2i else None,
    }


def t2i_compbench_score(subject: Found | None, obj: Found | None, predicate: str) -> float:
    """T2I-CompBench's score of one relation: 0.25 x each found object's confidence, plus half the
    position score when both are found; under 0.5 it counts as 0."""
    score = sum(0.25 * place.score for place in (subject, obj) if place is not None)
    if subject is not None and obj is not None:
        score += t2i_compbench_position(subject.box, obj.box, predicate) / 2
    return score if score >= 0.5 else 0.0


def max_consistent(graph: SceneGraph) -> int:
    """Size of the largest subset of relations without a contradiction (unit weights)."""
    unit = graph.model_copy(update={"relations": [r.model_copy(update={"weight": 1.0}) for r in graph.relations]})
    return len(graph.relations) - len(analyze(unit, policy="drop").dropped)


def score_run(run: Path, detector: Detector, progress: bool = True) -> list[dict]:
    """Score every image of the run that is not scored yet; returns all rows of `scores.jsonl`."""
    generated = [r for r in manifest_rows(run) if r["refused"] is None]
    if not generated:
        raise InfsplignError(f"{run} holds no generated images (run `infsplign-scene generate` first)")
    path = run / "scores.jsonl"
    rows = read_rows(path)
    done = {(r["id"], r["k"], r["arm"]) for r in rows}
    todo = [r for r in generated if (r["id"], r["k"], r["arm"]) not in done]
    with path.open("a") as sink:
        for row in tqdm(todo, unit="image", disable=not progress):
            graph = SceneGraph.model_validate(row["graph"])
            with Image.open(run / row["image"]) as image:
                scored = score_image(detector, image.convert("RGB"), graph)
            kept = ("id", "kind", "k", "arm", "seed", "seconds", "final_satisfied", "centroids_satisfied")
            new = {key: row.get(key) for key in kept} | scored
            new["guided_relations"] = row.get("relations")  # the objective's: those the policy kept
            new["max_consistent"] = max_consistent(graph)
            sink.write(json.dumps(new) + "\n")
            sink.flush()
            rows.append(new)
    return rows


def visor(rows: list[dict]) -> dict:
    """The VISOR metrics (percentages) over images of two objects and one relation."""
    pairs = [r for r in rows if len(r["found"]) == 2 and len(r["outcomes"]) == 1]
    if not pairs:
        return {}
    both = [r for r in pairs if r["all_found"]]
    right = [r for r in both if r["outcomes"][0] is True]
    per_prompt: dict[str, int] = defaultdict(int)
    for r in pairs:
        per_prompt[r["id"]] += r["all_found"] and r["outcomes"][0] is True
    oa = 100 * len(both) / len(pairs)
    cond = 100 * len(right) / len(both) if both else 0.0
    result = {"images": len(pairs), "OA": oa, "VISOR_cond": cond, "VISOR_uncond": cond * oa / 100}
    for n in range(1, 5):
        result[f"VISOR_{n}"] = 100 * sum(count >= n for count in per_prompt.values()) / len(per_prompt)
    return result


def interval(values_by_prompt: dict[str, list[float]], seed: int = 0) -> list[float]:
    """95% bootstrap interval of the mean over prompts (prompts resampled, their images kept)."""
    groups = [np.asarray(v, dtype=float) for v in values_by_prompt.values() if v]
    if not groups:
        return [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    means = []
    for _ in range(BOOTSTRAP_SAMPLES):
        chosen = [groups[i] for i in rng.integers(0, len(groups), len(groups))]
        means.append(np.concatenate(chosen).mean())
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def within_interval(values_by_prompt: dict[str, list[float]], seed: int = 0) -> list[float]:
    """95% bootstrap interval of the mean with the prompts kept and their images resampled: how far
    the number moves with the seeds, for these prompts."""
    groups = [np.asarray(v, dtype=float) for v in values_by_prompt.values() if v]
    if not groups:
        return [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    means = [
        np.concatenate([g[rng.integers(0, len(g), len(g))] for g in groups]).mean() for _ in range(BOOTSTRAP_SAMPLES)
    ]
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def consistent_share(row: dict) -> float | None:
    """Relations satisfied over the largest consistent subset's size (at most 1); None without relations."""
    if not row.get("max_consistent"):
        return None
    return min(sum(o is True for o in row["outcomes"]) / row["max_consistent"], 1.0)


def by_kind(rows: list[dict], refused: dict[tuple[str, str], int] | None = None) -> list[dict]:
    """Per kind and arm: object accuracy, the share of the largest consistent subset satisfied
    and all satisfied, each with its 95% interval over the seeds (`within_interval`)."""
    cells: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        if r.get("kind") is not None:
            cells[(r["kind"], r["arm"])].append(r)
    for kind, arm in refused or {}:  # cells whose every image was refused
        if kind is not None:
            cells.setdefault((kind, arm), [])
    table = []
    for (kind, arm), members in sorted(cells.items()):
        entry: dict = {"kind": kind, "arm": arm, "images": len(members)}
        entry["refused"] = (refused or {}).get((kind, arm), 0)
        for name, value in (
            ("object_accuracy", lambda r: float(r["all_found"])),
            ("max_consistent_share", consistent_share),
            ("all_satisfied", lambda r: float(r["all_satisfied"])),
        ):
            grouped: dict[str, list[float]] = defaultdict(list)
            for r in members:
                if (v := value(r)) is not None:
                    grouped[r["id"]].append(v)
            flat = [v for values in grouped.values() for v in values]
            entry[name] = float(np.mean(flat)) if flat else None
            entry[f"{name}_95"] = within_interval(grouped)
        entry["seconds_per_image"] = float(np.mean([r.get("seconds") or 0.0 for r in members])) if members else None
        table.append(entry)
    return table


def arm_differences(rows: list[dict]) -> list[dict]:
    """Per kind, each two arms on the same images (id, k): the mean difference of the share of the
    largest consistent subset satisfied, its 95% interval over the seeds, and whether the interval
    leaves out 0 (an established difference)."""
    shares = {(r.get("kind"), r["id"], r["k"], r["arm"]): consistent_share(r) for r in rows if r.get("kind")}
    kinds = sorted({key[0] for key in shares})
    arms = sorted({key[3] for key in shares})
    table = []
    for kind in kinds:
        for i, first in enumerate(arms):
            for second in arms[i + 1 :]:
                grouped: dict[str, list[float]] = defaultdict(list)
                for (k_kind, row_id, k, arm), value in shares.items():
                    other = shares.get((kind, row_id, k, second))
                    if k_kind == kind and arm == first and value is not None and other is not None:
                        grouped[row_id].append(value - other)
                if not grouped:
                    continue
                low, high = within_interval(grouped)
                mean = float(np.mean([v for values in grouped.values() for v in values]))
                table.append(
                    {
                        "kind": kind,
                        "arms": f"{first} - {second}",
                        "images": sum(len(v) for v in grouped.values()),
                        "difference": mean,
                        "difference_95": [low, high],
                        "established": bool(low > 0 or high < 0),
                    }
                )
    return table


def multi_relation(rows: list[dict]) -> dict:
    """The share of objects found and of images with all found; per-relation accuracy among found
    pairs and all-satisfied, overall, by predicate and by size."""
    judged: dict[str, list[float]] = defaultdict(list)
    satisfied: dict[str, list[float]] = defaultdict(list)
    by_predicate: dict[str, list[bool]] = defaultdict(list)
    by_size: dict[int, list[bool]] = defaultdict(list)
    for r in rows:
        satisfied[r["id"]].append(float(r["all_satisfied"]))
        by_size[len(r["found"])].append(r["all_satisfied"])
        for predicate, outcome in zip(r["predicates"], r["outcomes"], strict=True):
            if outcome is not None:
                judged[r["id"]].append(float(outcome))
                by_predicate[predicate].append(outcome)
    flat = [v for values in judged.values() for v in values]
    objects = [found for r in rows for found in r["found"].values()]
    return {
        "images": len(rows),
        "objects_found": float(np.mean(objects)) if objects else None,
        "all_objects_found": float(np.mean([r["all_found"] for r in rows])) if rows else None,
        "relation_accuracy": float(np.mean(flat)) if flat else None,
        "relation_accuracy_95": interval(judged),
        "all_satisfied": float(np.mean([v for values in satisfied.values() for v in values])) if rows else None,
        "all_satisfied_95": interval(satisfied),
        "relation_accuracy_by_predicate": {p: float(np.mean(v)) for p, v in sorted(by_predicate.items())},
        "all_satisfied_by_objects": {str(n): float(np.mean(v)) for n, v in sorted(by_size.items())},
    }


def flips(unguided: list[list[bool | None]], guided: list[list[bool | None]]) -> dict:
    """Relations fixed and broken by guidance: per image (same seed), each relation's outcome
    without and with guidance; pairs with a missing object (None) are not counted."""
    fixed = broken = 0
    for before_image, after_image in zip(unguided, guided, strict=True):
        for before, after in zip(before_image, after_image, strict=True):
            if before is not None and after is not None:
                fixed += int(not before and after)
                broken += int(before and not after)
    return {"fixed": fixed, "broken": broken}


def paired_flips(rows: list[dict]) -> dict:
    """`flips` between the unguided and guided images of the same prompt and seed."""
    by_key = {(r["id"], r["k"], r["arm"]): r for r in rows}
    pairs = [
        (by_key[(row_id, k, "unguided")]["outcomes"], guided["outcomes"])
        for (row_id, k, arm), guided in by_key.items()
        if arm == "guided" and (row_id, k, "unguided") in by_key
    ]
    return flips([before for before, _ in pairs], [after for _, after in pairs])


def duplicates(rows: list[dict]) -> dict:
    """Images where an object is drawn more often than the graph asks, and the relations the
    report (the attention maps) called satisfied or uncertain although their subject or object was
    drawn twice."""
    counts = {"images": len(rows), "duplicate_rate": None, "relations_on_duplicates": 0}
    counts |= {"satisfied_on_duplicates": 0, "uncertain_on_duplicates": 0}
    if rows:
        counts["duplicate_rate"] = float(np.mean([bool(r.get("duplicated")) for r in rows]))
    for r in rows:
        twice = set(r.get("duplicated") or [])
        # the report covers the guided relations (those a policy kept), in the objective's order
        reported = dict(zip(r.get("guided_relations") or [], r.get("final_satisfied") or [], strict=False))
        for relation in r.get("relations", []):
            state = reported.get(relation, False)
            subject, _, obj = relation.split()
            if twice & {subject, obj}:
                counts["relations_on_duplicates"] += 1
                counts["satisfied_on_duplicates"] += state is True
                counts["uncertain_on_duplicates"] += state is None
    return counts


def report_against_detector(rows: list[dict]) -> dict:
    """How the report's verdicts on the guided relations compare with the detector's, among the
    relations whose objects the detector found: per verdict (`satisfied`, `violated`, `uncertain`),
    how many the detector judges holding and not holding; `before` from the centroids alone
    (`centroids_satisfied`), `after` with the split checks (`final_satisfied`)."""
    counts = {
        stage: {verdict: {"holds": 0, "fails": 0} for verdict in ("satisfied", "violated", "uncertain")}
        for stage in ("before", "after")
    }
    for r in rows:
        outcome = dict(zip(r.get("relations", []), r.get("outcomes", []), strict=False))
        for stage, key in (("before", "centroids_satisfied"), ("after", "final_satisfied")):
            for relation, state in zip(r.get("guided_relations") or [], r.get(key) or [], strict=False):
                if outcome.get(relation) is not None:
                    verdict = "uncertain" if state is None else ("satisfied" if state else "violated")
                    counts[stage][verdict]["holds" if outcome[relation] else "fails"] += 1
    return counts


def paired_duplicates(rows: list[dict]) -> dict:
    """Images (same prompt and seed) where guidance created a duplicated object, and where it removed one."""
    by_key = {(r["id"], r["k"], r["arm"]): bool(r.get("duplicated")) for r in rows}
    created = removed = 0
    for (row_id, k, arm), has in by_key.items():
        had = by_key.get((row_id, k, "unguided"))
        if arm == "guided" and had is not None:
            created += has and not had
            removed += had and not has
    return {"created": created, "removed": removed}


def public_protocols(rows: list[dict]) -> dict:
    """GenEval's accuracy (images without `near`) and T2I-CompBench's mean score."""
    judged = [r for r in rows if "geneval" in r and r["predicates"] and "near" not in r["predicates"]]
    right = [r["all_found"] and all(o is True for o in r["geneval"]) for r in judged]
    scored = [r["t2i_compbench"] for r in rows if r.get("t2i_compbench") is not None]
    return {
        "geneval": {"images": len(judged), "accuracy": float(np.mean(right)) if right else None},
        "t2i_compbench": {"images": len(scored), "score": float(np.mean(scored)) if scored else None},
    }


def summarise(rows: list[dict], refused: dict[tuple[str, str], int] | None = None) -> dict:
    """Per arm: VISOR, multi-relation scores and the public protocols; the paired flips; and, when
    the rows have kinds, the tables by kind and the differences between arms."""
    arms = sorted({r["arm"] for r in rows})
    summary: dict = {}
    for arm in arms:
        mine = [r for r in rows if r["arm"] == arm]
        summary[arm] = {
            "visor": visor(mine),
            "multi_relation": multi_relation(mine),
            **public_protocols(mine),
            "duplicates": duplicates(mine),
            "report_against_detector": report_against_detector(mine),
        }
    if {"guided", "unguided"} <= set(arms):
        summary["paired_flips"] = paired_flips(rows)
        summary["paired_duplicates"] = paired_duplicates(rows)
    if any(r.get("kind") is not None for r in rows):
        summary["by_kind"] = by_kind(rows, refused)
        summary["arm_differences"] = arm_differences(rows)
    return summary


def refused_counts(run: Path) -> dict[tuple[str, str], int]:
    """Images a run refused (a parse error, a conflict under policy `error`), per kind and arm."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for row in manifest_rows(run):
        if row["refused"] is not None:
            counts[(row.get("kind"), row["arm"])] += 1
    return dict(counts)
