import json

import pytest

from infsplign_scene.guidance import ScenePipeline
from infsplign_scene.lab.study import max_consistent, run_study
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


def test_owlvit_detector_runs_on_a_tiny_random_model(clip_tokenizer, tmp_path):
    from PIL import Image
    from transformers import OwlViTConfig, OwlViTForObjectDetection, OwlViTProcessor
    from transformers.models.owlvit.image_processing_pil_owlvit import OwlViTImageProcessorPil

    from infsplign_scene.lab.detectors import OwlVitDetector

    config = OwlViTConfig(
        text_config={
            "vocab_size": 49408,
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 77,
        },
        vision_config={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=16,
    )
    OwlViTForObjectDetection(config).save_pretrained(tmp_path)
    image_processor = OwlViTImageProcessorPil(size={"height": 32, "width": 32}, crop_size={"height": 32, "width": 32})
    OwlViTProcessor(image_processor=image_processor, tokenizer=clip_tokenizer).save_pretrained(tmp_path)
    detector = OwlVitDetector(tmp_path, threshold=0.0)
    graph = parse("a red circle to the left of a blue square")
    located = detector.locate(Image.new("RGB", (64, 48), "gray"), graph)
    assert set(located) == {"circle", "square"}
    assert all(v is None or (len(v.box) == 4 and all(0 <= c <= 1 for c in v.box)) for v in located.values())
    assert all(v is None or v.score >= 0 for v in located.values())


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
        ('{"graphs": [{"id": "a", "text": "a cat"}], "seeds": ' + str(list(range(60000))) + "}", "more than"),
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
    run_study(tmp_path / "spec.json", out, scene_pipe=ScenePipeline(tiny_pipe), progress=False)
    written = [p for p in tmp_path.rglob("*.png") if p.name != "summary.png"]
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
    run_study(tmp_path / "spec.json", out, scene_pipe=scene, progress=False)
    assert batches == [2, 1]
    lines = (out / "results.jsonl").read_text().splitlines()
    (out / "results.jsonl").write_text("\n".join(lines[:2]) + "\n" + lines[2][: len(lines[2]) // 2])  # a full disk
    rows = run_study(tmp_path / "spec.json", out, scene_pipe=scene, progress=False)
    assert sorted(r["seed"] for r in rows) == [0, 1, 2] and batches == [2, 1, 1]
    assert [json.loads(line)["seed"] for line in (out / "results.jsonl").read_text().splitlines()] == [0, 1, 2]
