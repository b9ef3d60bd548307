import json

from infsplign_scene.guidance import ScenePipeline
from infsplign_scene.parsing import parse
from infsplign_scene.study import max_consistent, run_study


def test_max_consistent_subset_size():
    assert max_consistent(parse("a red circle left of a blue square, the blue square left of the red circle")) == 1
    cycle = (
        "a red circle left of a blue square, the blue square left of a green triangle, "
        "the green triangle left of the red circle"
    )
    assert max_consistent(parse(cycle)) == 2
    assert max_consistent(parse("a red circle left of a blue square")) == 1


def test_study_writes_rows_resumes_and_summarises(tiny_pipe, tmp_path):
    spec = {
        "seeds": [0, 1],
        "policies": ["drop", "keep", "pcgrad", "error"],
        "sampling": {"num_inference_steps": 2},
        "graphs": [
            {"id": "pair", "kind": "consistent", "text": "a red circle to the left of a blue square"},
            {
                "id": "cycle",
                "kind": "conflict",
                "text": "a red circle to the left of a blue square, the blue square to the left of the red circle",
            },
        ],
    }
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    out = tmp_path / "out"
    scene = ScenePipeline(tiny_pipe)
    rows = run_study(path, out, scene_pipe=scene, progress=False)
    assert len(rows) == 2 * 2 * 4
    refused = [r for r in rows if r["refused"]]
    assert {(r["graph"], r["policy"]) for r in refused} == {("cycle", "error")}
    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == 16
    # an interrupted run: drop the last row; re-running adds exactly that row back
    (out / "results.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    again = run_study(path, out, scene_pipe=scene, progress=False)
    assert len(again) == 16 and len((out / "results.jsonl").read_text().splitlines()) == 16
    summary = (out / "summary.md").read_text()
    assert "max_consistent_share" in summary and "pcgrad" in summary
    assert (out / "summary.csv").exists() and (out / "summary.png").exists()
