"""`score`: the VISOR formulas on a hand-computed fixture, and generate + score end to end."""

import json

import pytest

from infsplign_scene.lab.score import paired_flips, summarise, visor


def row(prompt_id, k, arm, found, outcome):
    return {
        "id": prompt_id,
        "k": k,
        "arm": arm,
        "found": {"a": found[0], "b": found[1]},
        "predicates": ["left_of"],
        "outcomes": [outcome if all(found) else None],
        "all_found": all(found),
        "all_satisfied": all(found) and outcome is True,
    }


def test_visor_metrics_match_a_hand_computed_fixture():
    # prompt p: 4 images, 3 with both objects, 2 of those right; prompt q: 4 images, all found, all right
    rows = [
        row("p", 0, "guided", (True, True), True),
        row("p", 1, "guided", (True, True), True),
        row("p", 2, "guided", (True, True), False),
        row("p", 3, "guided", (True, False), None),
        *[row("q", k, "guided", (True, True), True) for k in range(4)],
    ]
    result = visor(rows)
    assert result["OA"] == pytest.approx(100 * 7 / 8)
    assert result["VISOR_cond"] == pytest.approx(100 * 6 / 7)
    assert result["VISOR_uncond"] == pytest.approx(100 * 6 / 8)
    assert [result[f"VISOR_{n}"] for n in range(1, 5)] == [100.0, 100.0, 50.0, 50.0]


def test_paired_flips_and_intervals():
    rows = [row("p", 0, "unguided", (True, True), False), row("p", 0, "guided", (True, True), True)]
    rows += [row("q", 0, "unguided", (True, True), True), row("q", 0, "guided", (True, True), False)]
    assert paired_flips(rows) == {"fixed": 1, "broken": 1}
    summary = summarise(rows)
    low, high = summary["guided"]["multi_relation"]["relation_accuracy_95"]
    assert 0.0 <= low <= 0.5 <= high <= 1.0


def test_generate_then_score_on_the_shapes_model(tmp_path, capsys):
    from infsplign_scene.cli import main

    prompt_set = tmp_path / "set.jsonl"
    rows = [
        {"id": "p0", "prompt": "a red circle to the left of a blue square"},
        {"id": "p1", "prompt": "a green triangle above a yellow circle"},
    ]
    prompt_set.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "run"
    arguments = ["generate", str(prompt_set), "--out", str(out), "--model", "shapes", "--images-per-prompt", "2"]
    assert main([*arguments, "-q"]) == 0
    assert main(["score", str(out), "-q"]) == 0
    scores = [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]
    assert len(scores) == 8 and all(len(s["found"]) == 2 and len(s["outcomes"]) == 1 for s in scores)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["guided"]["visor"]["images"] == 4 and summary["unguided"]["visor"]["images"] == 4
    assert summary["guided"]["visor"]["OA"] >= 50  # the shapes model draws what it is asked for
    assert "VISOR_cond" in (out / "summary.md").read_text() and (out / "summary.png").stat().st_size > 0
    assert summary["guided"]["geneval"]["images"] == 4 and summary["guided"]["t2i_compbench"]["images"] == 4
    assert all(set(s["boxes"]) == set(s["found"]) and len(s["geneval"]) == 1 for s in scores)
    assert 0 <= summary["guided"]["duplicates"]["duplicate_rate"] <= 1 and "created" in summary["paired_duplicates"]
    verdicts = summary["guided"]["report_against_detector"]  # every guided relation whose objects were found
    judged = sum(g["holds"] + g["fails"] for g in verdicts["after"].values())
    assert judged == sum(g["holds"] + g["fails"] for g in verdicts["before"].values()) > 0
    assert sum(verdicts["before"]["uncertain"].values()) == 0  # the centroids alone never doubt
    assert main(["score", str(out), "-q"]) == 0  # a rerun scores nothing new
    assert len((out / "scores.jsonl").read_text().splitlines()) == 8


@pytest.mark.parametrize(
    ("subject", "obj", "predicate", "expected"),
    [
        # centres 0.4 apart on x, boxes 0.2 wide: offset shrunk by 0.1 x 0.4 to 0.36 of 0.4 -> left of
        ((0.1, 0.4, 0.3, 0.6), (0.5, 0.4, 0.7, 0.6), "left_of", True),
        ((0.1, 0.4, 0.3, 0.6), (0.5, 0.4, 0.7, 0.6), "right_of", False),
        # a diagonal offset: 0.3 on x and 0.3 on y, each shrunk to 0.26: share 0.26 / 0.42 = 0.61 -> both
        ((0.1, 0.1, 0.3, 0.3), (0.4, 0.4, 0.6, 0.6), "left_of", True),
        ((0.1, 0.1, 0.3, 0.3), (0.4, 0.4, 0.6, 0.6), "above", True),
        # large boxes whose centres are close: the shrunk offset vanishes, no relation
        ((0.0, 0.0, 0.6, 0.6), (0.05, 0.0, 0.65, 0.6), "left_of", False),
        ((0.1, 0.4, 0.3, 0.6), (0.5, 0.4, 0.7, 0.6), "near", None),
    ],
)
def test_genevals_position_rule(subject, obj, predicate, expected):
    from infsplign_scene.relations import geneval_holds

    assert geneval_holds(subject, obj, predicate) is expected


def test_t2i_compbench_position_and_score():
    from infsplign_scene.lab.detectors import Found
    from infsplign_scene.lab.score import t2i_compbench_score
    from infsplign_scene.relations import t2i_compbench_position

    left, right = (0.0, 0.4, 0.2, 0.6), (0.5, 0.4, 0.7, 0.6)
    assert t2i_compbench_position(left, right, "left_of") == 1.0
    assert t2i_compbench_position(right, left, "left_of") == 0.0
    overlapping = (0.1, 0.4, 0.3, 0.6)  # IoU with `left`: 0.02 / 0.06 = 1/3 -> 0.1 / (1/3) = 0.3
    assert t2i_compbench_position(left, overlapping, "left_of") == pytest.approx(0.3)
    far = (0.9, 0.9, 1.0, 1.0)  # centres 0.85 apart on both axes, beyond 150/512: (150/512) / 0.85
    assert t2i_compbench_position(left, far, "near") == pytest.approx(150 / 512 / 0.85)
    assert t2i_compbench_score(Found(left, 0.8), Found(right, 0.6), "left_of") == pytest.approx(0.2 + 0.15 + 0.5)
    assert t2i_compbench_score(Found(left, 0.8), None, "left_of") == 0.0  # 0.2 is under 0.5


def test_duplicates_are_counted_and_paired():
    from infsplign_scene.lab.score import duplicates, paired_duplicates

    def scored(arm, duplicated, states):
        return {"id": "p", "k": 0, "arm": arm, "duplicated": duplicated, "final_satisfied": states}

    stated = {"relations": ["a left_of b", "b left_of c", "c left_of a"]}
    rows = [
        scored("unguided", [], [False, False]) | stated | {"guided_relations": ["a left_of b", "b left_of c"]},
        scored("guided", ["b"], [None, True]) | stated | {"guided_relations": ["b left_of c", "c left_of a"]},
    ]
    # a policy dropped "a left_of b": the report's states belong to the two kept relations
    assert duplicates(rows[1:]) == {
        "images": 1,
        "duplicate_rate": 1.0,
        "relations_on_duplicates": 2,
        "satisfied_on_duplicates": 0,
        "uncertain_on_duplicates": 1,
    }
    assert (
        duplicates([rows[1] | {"guided_relations": stated["relations"], "final_satisfied": [True, None, True]}])[
            "satisfied_on_duplicates"
        ]
        == 1
    )
    assert paired_duplicates(rows) == {"created": 1, "removed": 0}


def test_non_maximum_suppression_counts_instances():
    from infsplign_scene.lab.detectors import non_maximum_suppression

    boxes = [(0.9, (0.0, 0.0, 0.2, 0.2)), (0.8, (0.01, 0.0, 0.21, 0.2)), (0.7, (0.6, 0.6, 0.8, 0.8))]
    assert [score for score, _ in non_maximum_suppression(boxes)] == [0.9, 0.7]


def test_the_reports_verdicts_are_counted_against_the_detectors_before_and_after_the_checks():
    from infsplign_scene.lab.score import report_against_detector

    row = {
        "relations": ["a left_of b", "b left_of c", "c left_of a"],
        "outcomes": [False, True, None],  # the detector: fails, holds, c not found
        "guided_relations": ["a left_of b", "b left_of c", "c left_of a"],
        "centroids_satisfied": [True, True, True],
        "final_satisfied": [None, True, True],
    }
    counts = report_against_detector([row])
    # "c left_of a" is not judged: the detector did not find c
    assert counts["before"]["satisfied"] == {"holds": 1, "fails": 1}
    assert counts["after"]["satisfied"] == {"holds": 1, "fails": 0}
    assert counts["after"]["uncertain"] == {"holds": 0, "fails": 1}
    assert counts["before"]["uncertain"] == counts["after"]["violated"] == {"holds": 0, "fails": 0}
