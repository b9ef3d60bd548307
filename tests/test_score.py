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
    assert main(["score", str(out), "-q"]) == 0  # a rerun scores nothing new
    assert len((out / "scores.jsonl").read_text().splitlines()) == 8
