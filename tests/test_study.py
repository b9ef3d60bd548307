import json

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

    from infsplign_scene.lab.study import OwlVitDetector

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
    assert all(v is None or (len(v) == 4 and all(0 <= c <= 1 for c in v)) for v in located.values())
