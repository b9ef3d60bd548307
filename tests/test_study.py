import json

import pytest

from infsplign_scene.guidance import ScenePipeline
from infsplign_scene.lab.detectors import ShapesDetector
from infsplign_scene.lab.generate import manifest_rows
from infsplign_scene.lab.score import max_consistent
from infsplign_scene.lab.study import run_study
from infsplign_scene.parsing import parse


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
    summary = run_study(path, out, scene_pipe=scene, detector=ShapesDetector(), progress=False)
    rows = manifest_rows(out)
    assert len(rows) == 2 * 2 * 4
    refused = [r for r in rows if r["refused"]]
    assert {(r["id"], r["arm"]) for r in refused} == {("cycle", "error")}
    assert len((out / "scores.jsonl").read_text().splitlines()) == 14
    cells = {(e["kind"], e["arm"]): e for e in summary["by_kind"]}
    assert cells[("conflict", "error")]["refused"] == 2 and cells[("conflict", "error")]["images"] == 0
    assert cells[("consistent", "drop")]["images"] == 2 and cells[("conflict", "drop")]["images"] == 2
    # every stated relation is judged, also the one `drop` leaves unguided
    scores = [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]
    assert all(len(s["outcomes"]) == 2 and s["max_consistent"] == 1 for s in scores if s["id"] == "cycle")
    # an interrupted run: drop the last manifest row; re-running makes exactly that image again
    lines = (out / "manifest.jsonl").read_text().splitlines()
    (out / "manifest.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    run_study(path, out, scene_pipe=scene, detector=ShapesDetector(), progress=False)
    assert len(manifest_rows(out)) == 16 and len((out / "scores.jsonl").read_text().splitlines()) == 14
    text = (out / "summary.md").read_text()
    assert "largest consistent share" in text and "pcgrad" in text and "established" in text
    assert (out / "summary.json").exists() and (out / "summary_kinds.png").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such study specification"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "a JSON object"),
        ('{"seeds": [0]}', "graphs"),
        ('{"graphs": [{"id": "a", "text": "a cat"}], "seeds": ["0"]}', "seeds.0"),
        ('{"graphs": [{"id": "a", "text": "a cat"}], "config": {"eta": -1}}', "eta"),
        ('{"graphs": [{"id": "a", "text": "a cat"}], "sampling": {"stepz": 3}}', "stepz"),
        ('{"graphs": [{"id": "a", "text": "a cat"}], "seeds": [1, 1]}', "repeated: 1"),
        ('{"graphs": [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]}', "repeated: a"),
        ('{"graphs": [{"id": "a", "text": "a cat"}], "seeds": ' + str(list(range(65))) + "}", "at most 64"),
        (
            '{"graphs": ['
            + ",".join(f'{{"id": "g{i}", "text": "a cat"}}' for i in range(1600))
            + '], "seeds": '
            + str(list(range(64)))
            + "}",
            "more than",
        ),
    ],
)
def test_a_bad_specification_is_a_typed_error_naming_the_problem(content, message, tmp_path):
    from infsplign_scene import InfsplignError
    from infsplign_scene.lab.study import load_spec

    path = tmp_path / "spec.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InfsplignError, match=message):
        load_spec(path)


def test_outputs_stay_under_out_whatever_the_graph_ids(tiny_pipe, tmp_path):
    spec = {
        "seeds": [0],
        "policies": ["keep"],
        "sampling": {"num_inference_steps": 1},
        "graphs": [
            {"id": "../../ESCAPED", "text": "a red circle to the left of a blue square"},
            {"id": "/tmp/absolute", "text": "a red circle above a blue square"},
        ],
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    out = tmp_path / "deep" / "out"
    run_study(
        tmp_path / "spec.json", out, scene_pipe=ScenePipeline(tiny_pipe), detector=ShapesDetector(), progress=False
    )
    written = [p for p in tmp_path.rglob("*.png") if not p.name.startswith("summary")]
    assert len(written) == 2 and all(out in p.parents for p in written)


def test_a_torn_last_line_is_redone_and_batches_are_bounded(tiny_pipe, tmp_path, monkeypatch):
    spec = {
        "seeds": [0, 1, 2],
        "policies": ["keep"],
        "batch_size": 2,
        "sampling": {"num_inference_steps": 1},
        "graphs": [{"id": "pair", "text": "a red circle to the left of a blue square"}],
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    out = tmp_path / "out"
    scene = ScenePipeline(tiny_pipe)
    batches = []
    original = ScenePipeline.__call__

    def counting(self, scenes, **kwargs):
        batches.append(len(scenes))
        return original(self, scenes, **kwargs)

    monkeypatch.setattr(ScenePipeline, "__call__", counting)
    run_study(tmp_path / "spec.json", out, scene_pipe=scene, detector=ShapesDetector(), progress=False)
    assert batches == [2, 1]
    lines = (out / "manifest.jsonl").read_text().splitlines()
    (out / "manifest.jsonl").write_text("\n".join(lines[:2]) + "\n" + lines[2][: len(lines[2]) // 2])  # a full disk
    run_study(tmp_path / "spec.json", out, scene_pipe=scene, detector=ShapesDetector(), progress=False)
    assert batches == [2, 1, 1]
    assert [json.loads(line)["seed"] for line in (out / "manifest.jsonl").read_text().splitlines()] == [0, 1, 2]
