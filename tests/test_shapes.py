import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from infsplign_scene.errors import InfsplignError
from infsplign_scene.lab.shapes.detector import classify_shape, detect
from infsplign_scene.lab.shapes.model import VOCABULARY, WEIGHTS_DIR, build_tokenizer
from infsplign_scene.lab.shapes.scenes import COLORS, SHAPES, caption, render, sample_count, sample_objects, shape_mask
from infsplign_scene.relations import holds


def test_generated_scenes_have_distinct_colours_no_overlap_and_no_relation_words():
    rng = np.random.default_rng(0)
    for _ in range(200):
        objects = sample_objects(rng, sample_count(rng))
        assert len({o.color for o in objects}) == len(objects)
        image, index = render(objects)
        for k, obj in enumerate(objects):
            assert (index == k).sum() == shape_mask(obj.shape, obj.center, obj.radius).sum()
        text, order = caption(objects, rng)
        assert sorted(order) == list(range(len(objects)))
        assert not {"left", "right", "above", "below", "near"} & set(text.split())


def test_detector_finds_ground_truth_objects():
    rng = np.random.default_rng(1)
    total = correct = 0
    for _ in range(2000 // 3):
        objects = sample_objects(rng, sample_count(rng))
        image, _ = render(objects)
        found = detect(image)
        assert found.artifact_pixels == 0
        for obj in objects:
            total += 1
            hit = found.find(obj.color, obj.shape)
            correct += hit is not None and abs(hit.centroid[0] * 32 - obj.center[0]) < 1.5
    assert correct / total >= 0.98


def test_shape_classification_by_template_fit():
    for shape in SHAPES:
        assert classify_shape(shape_mask(shape, (16.0, 16.0), 6.0))[0] == shape


def test_relation_judgement_from_detections():
    image, _ = render(
        [
            type(sample_objects(np.random.default_rng(0), 1)[0])("red", "circle", (8.0, 8.0), 5.0),
            type(sample_objects(np.random.default_rng(0), 1)[0])("blue", "square", (24.0, 10.0), 5.0),
        ]
    )
    found = detect(image)
    red, blue = found.objects["red"], found.objects["blue"]
    assert holds(red.centroid, blue.centroid, "left_of") and not holds(red.centroid, blue.centroid, "right_of")
    assert holds(red.centroid, blue.centroid, "above") and not holds(red.centroid, blue.centroid, "above", strict=True)
    assert not holds(red.centroid, blue.centroid, "near")


def test_tokenizer_is_word_level_with_clip_style_ends():
    tokenizer = build_tokenizer()
    ids = tokenizer("a red circle and a blue square", padding="max_length", max_length=77).input_ids
    assert len(ids) == 77 and ids[0] == tokenizer.bos_token_id and tokenizer.pad_token_id == 0
    assert tokenizer.decode(ids[1:8]) == "a red circle and a blue square"
    assert set(COLORS) <= set(VOCABULARY) and len(set(VOCABULARY)) == len(VOCABULARY)


def test_training_script_runs_resumes_and_exports_an_sd_folder(tmp_path):
    from diffusers import StableDiffusionPipeline

    from infsplign_scene.lab.shapes.train import main

    main(["--out", str(tmp_path), "--vae-steps", "2", "--unet-steps", "2", "--batch-size", "4", "--threads", "1"])
    log = (tmp_path / "train_log.jsonl").read_text()
    assert '"stage": "unet"' in log and (tmp_path / "checkpoint.pt").exists()
    main(["--out", str(tmp_path), "--vae-steps", "2", "--unet-steps", "3", "--batch-size", "4", "--threads", "1"])
    pipe = StableDiffusionPipeline.from_pretrained(tmp_path / "model", use_safetensors=True)
    assert pipe.unet.config.cross_attention_dim == 64 and pipe.vae.config.scaling_factor > 0

    tuned = tmp_path / "tuned"
    args = ["--out", str(tuned), "--vae-from", str(tmp_path / "model"), "--unet-steps", "2", "--batch-size", "4"]
    main([*args, "--attribute-weight", "0.1", "--edge-weight", "3", "--threads", "1"])
    log = [json.loads(line) for line in (tuned / "train_log.jsonl").read_text().splitlines()]
    assert all(record["stage"] == "unet" for record in log) and math.isfinite(log[0]["attribute"])
    tuned_pipe = StableDiffusionPipeline.from_pretrained(tuned / "model", use_safetensors=True)
    assert tuned_pipe.vae.config.scaling_factor == pipe.vae.config.scaling_factor

    # fine-tuning starts every part from the folder: at lr 0 the exported weights are the folder's
    fine = tmp_path / "fine"
    args = ["--out", str(fine), "--init-from", str(tuned / "model"), "--unet-steps", "1", "--batch-size", "4"]
    main([*args, "--lr", "0", "--object-counts", "0,0,0,1", "--threads", "1"])
    fine_pipe = StableDiffusionPipeline.from_pretrained(fine / "model", use_safetensors=True)
    for part in ("unet", "text_encoder", "vae"):
        for (name, before), after in zip(
            getattr(tuned_pipe, part).state_dict().items(), getattr(fine_pipe, part).state_dict().values(), strict=True
        ):
            assert torch.equal(before, after), (part, name)


def test_object_counts_are_drawn_as_asked_and_checked():
    from infsplign_scene.lab.training import parse_object_counts

    rng = np.random.default_rng(0)
    assert {sample_count(rng, (0.0, 0.0, 0.0, 1.0)) for _ in range(50)} == {4}
    assert {sample_count(rng, (0.0, 0.5, 0.5, 0.0)) for _ in range(200)} == {2, 3}
    assert parse_object_counts("0.1,0.3,0.3,0.3", 4) == (0.1, 0.3, 0.3, 0.3)
    for bad in ("0.5,0.5", "0.5,0.5,0.5,-0.5", "a,b,c,d", "0.2,0.2,0.2,0.2"):
        with pytest.raises(SystemExit, match="object-counts"):
            parse_object_counts(bad, 4)


def test_training_starts_from_one_folder_at_most(tmp_path):
    from infsplign_scene.lab.shapes.train import main

    with pytest.raises(SystemExit):  # argparse refuses the pair before anything is built
        main(["--out", str(tmp_path), "--vae-from", str(tmp_path), "--init-from", str(tmp_path)])
    assert not (tmp_path / "train_log.jsonl").exists()


def test_training_batches_label_each_word_with_its_object_and_attribute():
    from infsplign_scene.lab.shapes.train import scene_batch

    tokenizer = build_tokenizer()
    pixels, masks, token_object, ids, token_attribute = scene_batch(np.random.default_rng(3), 16, tokenizer)
    vocabulary = list(VOCABULARY)
    attribute_names = [*COLORS, *SHAPES]
    for b in range(16):
        for position in np.nonzero(token_object[b].numpy() >= 0)[0]:
            word = vocabulary[int(ids[b, position])]
            assert attribute_names[int(token_attribute[b, position])] == word
            mask = masks[b, int(token_object[b, position])].bool()
            if word in COLORS:  # the word's object is the one drawn in that colour
                drawn = (pixels[b, :, mask].mean(1) + 1) * 127.5
                assert torch.allclose(drawn, torch.tensor(COLORS[word], dtype=torch.float), atol=1)
        assert (token_attribute[b][token_object[b] < 0] == -100).all()


def test_edge_weights_mark_object_outlines_only():
    from infsplign_scene.lab.training import edge_weights

    masks = torch.zeros(1, 4, 32, 32)
    masks[0, 0, 8:24, 8:24] = 1  # a 16-pixel square
    weights = edge_weights(masks, 3.0, 16)[0, 0]
    assert weights.shape == (16, 16)
    assert weights[8, 8] == 1 and weights[0, 0] == 1  # interior and background
    assert weights[4, 8] > 1 and weights[8, 4] > 1  # on the outline
    assert torch.equal(edge_weights(masks, 0.0, 16), torch.ones(1, 1, 16, 16))


@pytest.mark.skipif(not (WEIGHTS_DIR / "model_index.json").exists(), reason="the embedded model's weights are absent")
def test_embedded_model_composes_and_rejects_unknown_words():
    from infsplign_scene import VocabularyError, compose

    result = compose("a red circle to the left of a blue square", pipe="shapes", seed=0, progress=False)
    assert result.images[0].size == (32, 32)
    with pytest.raises(VocabularyError, match="circle"):
        compose("a red dog to the left of a blue square", pipe="shapes", seed=0)


@pytest.mark.skipif(not (WEIGHTS_DIR / "model_index.json").exists(), reason="the embedded model's weights are absent")
def test_cli_compose_takes_the_sampler_settings_and_rejects_bad_ones(tmp_path):
    from typer.testing import CliRunner

    from infsplign_scene.cli import app

    runner = CliRunner()
    prompt = "a red circle to the left of a blue square"
    pictures = []
    for ddim_eta in ("0", "1"):
        out = tmp_path / f"eta{ddim_eta}.png"
        arguments = ["compose", prompt, "--model", "shapes", "-o", str(out), "--ddim-eta", ddim_eta, "--steps", "4"]
        result = runner.invoke(app, arguments)
        assert result.exit_code == 0, result.output
        pictures.append(np.asarray(Image.open(out)))
    assert not np.array_equal(*pictures)  # the same seed, a different sampler
    bad = runner.invoke(app, ["compose", prompt, "--model", "shapes", "-o", str(tmp_path / "x.png"), "--ddim-eta", "2"])
    assert bad.exit_code == 2 and "ddim_eta: Input should be less than or equal to 1" in bad.output
    bad = runner.invoke(
        app, ["compose", prompt, "--model", "shapes", "-o", str(tmp_path / "x.png"), "--prompt-style", "words"]
    )
    assert bad.exit_code == 2 and "prompt_style: Input should be 'as_written' or 'objects'" in bad.output
    bad = runner.invoke(app, ["compose", prompt, "--model", "shapes", "-o", str(tmp_path / "x.png"), "--cuda-graph"])
    assert bad.exit_code == 2 and "cuda_graph=True replays the guided step from a CUDA graph" in bad.output
    # a bad guidance setting names the setting, without a traceback
    bad = runner.invoke(
        app, ["compose", prompt, "--model", "shapes", "-o", str(tmp_path / "x.png"), "--cfg-forward", "parallel"]
    )
    assert bad.exit_code == 2 and "cfg_forward" in bad.output and "'concurrent'" in bad.output
    bad = runner.invoke(app, ["compose", prompt, "--model", "shapes", "-o", str(tmp_path / "x.png"), "--eta", "-3"])
    assert bad.exit_code == 2 and "eta" in bad.output and "greater than or equal to 0" in bad.output
    out = tmp_path / "concurrent.png"
    result = runner.invoke(app, ["compose", prompt, "--model", "shapes", "-o", str(out), "--cfg-forward", "concurrent"])
    assert result.exit_code == 0, result.output
    assert out.exists()


def test_benchmark_scores_drawn_scenes_as_drawn():
    """Scenes drawn to satisfy (even items) or violate (odd items) their relation score exactly so;
    an object left out is missing from object accuracy and from the judged relations."""
    from infsplign_scene.lab.shapes.bench import make_suite, score
    from infsplign_scene.lab.shapes.scenes import ShapeObject

    places = {  # predicate -> (subject centre, object centre) where it holds
        "left_of": ((8.0, 16.0), (24.0, 16.0)),
        "right_of": ((24.0, 16.0), (8.0, 16.0)),
        "above": ((16.0, 8.0), (16.0, 24.0)),
        "below": ((16.0, 24.0), (16.0, 8.0)),
        "near": ((10.0, 16.0), (21.0, 16.0)),
    }
    violated = {"near": ((5.0, 5.0), (27.0, 27.0))}
    items = make_suite("a_two_objects", 10, 0)
    images = []
    for i, item in enumerate(items):
        relation = item.graph.relations[0]
        ids = [o.id for o in item.graph.objects]
        subject_at, object_at = places[relation.predicate]
        if i % 2:
            subject_at, object_at = violated.get(relation.predicate, (object_at, subject_at))
        centres = {ids.index(relation.subject): subject_at, ids.index(relation.object): object_at}
        drawn = [ShapeObject(color, shape, centres[k], 5.0) for k, (color, shape) in enumerate(item.objects)]
        images.append(Image.fromarray(render(drawn[:1] if i == 9 else drawn)[0]))
    metrics, outcomes = score(items, images, [item.graph for item in items])
    assert [o[0] for o in outcomes] == [True, False] * 4 + [True, None]
    assert metrics["object_accuracy"] == 0.9 and metrics["relation_accuracy"] == 5 / 9
    assert metrics["relation_accuracy_uncond"] == 0.5 and metrics["all_satisfied"] == 0.5


@pytest.mark.skipif(not (WEIGHTS_DIR / "model_index.json").exists(), reason="the embedded model's weights are absent")
def test_benchmark_runs_every_suite_on_one_image(tmp_path):
    from infsplign_scene import ScenePipeline
    from infsplign_scene.lab.shapes.bench import SUITES, run_benchmark

    shapes = ScenePipeline.from_pretrained("shapes")
    few_steps = shapes.preset.model_copy(update={"sampling": shapes.preset.sampling.updated(num_inference_steps=4)})
    scene_pipe = ScenePipeline(shapes.pipe, preset=few_steps)  # the benchmark's plumbing, not its accuracy
    results = run_benchmark(
        tmp_path / "run", images=1, seed=0, scene_pipe=scene_pipe, grid_path=tmp_path / "g.png", progress=False
    )
    assert results["sampling"]["num_inference_steps"] == 4
    for suite in SUITES:
        for mode in ("unguided", "guided"):
            assert results[suite][mode]["images"] == 1
            assert 0 <= results[suite][mode]["relation_accuracy"] <= 1
        assert (tmp_path / "run" / suite / "summary.md").exists()
    assert results["d_conflict_drop"]["guided"]["max_consistent_satisfied"] >= 0
    assert Image.open(tmp_path / "g.png").size[1] == 2 * len(SUITES) * 32 * 4  # two rows per suite, upscaled x4
    again = run_benchmark(tmp_path / "run", images=1, seed=0, scene_pipe=scene_pipe, progress=False)
    assert again == results  # a re-run resumes


def test_judgements_are_plain_python_booleans():
    import json

    from infsplign_scene.lab.score import flips

    rng = np.random.default_rng(3)
    found = detect(render(sample_objects(rng, 2))[0])
    first, second = found.objects.values()
    outcome = holds(first.centroid, second.centroid, "left_of")
    assert type(outcome) is bool and type(holds(first.centroid, second.centroid, "near")) is bool
    json.dumps(flips([[outcome, None]], [[not outcome, True]]))


def test_suites_name_objects_only_or_write_relations_into_the_prompt():
    from infsplign_scene.lab.shapes.bench import make_suite

    for item in make_suite("b_three_objects", 5, 0):
        prompt = item.graph.prompt
        assert prompt == " and ".join(f"a {o.name}" for o in item.graph.objects)
        assert len(item.graph.relations) == 2  # the relations live in the graph
        for obj in item.graph.objects:
            assert prompt[obj.span[0] : obj.span[1]] == obj.name
    for item in make_suite("b_three_objects", 5, 0, prompt="relations"):
        assert any(word in item.graph.prompt for word in ("left of", "right of", "above", "below"))
    with pytest.raises(InfsplignError, match="unknown prompt style 'relatons'"):
        make_suite("b_three_objects", 5, 0, prompt="relatons")


def test_an_object_drawn_twice_is_counted_and_its_satisfied_relation_reported():
    from infsplign_scene.lab.detectors import ShapesDetector
    from infsplign_scene.lab.score import duplicates, paired_duplicates, score_image
    from infsplign_scene.lab.shapes.bench import make_suite, score
    from infsplign_scene.lab.shapes.scenes import ShapeObject

    item = make_suite("a_two_objects", 1, 0)[0]
    (first_color, first_shape), (second_color, second_shape) = item.objects
    once = [
        ShapeObject(first_color, first_shape, (8.0, 8.0), 5.0),
        ShapeObject(second_color, second_shape, (24.0, 24.0), 5.0),
    ]
    twice = [*once, ShapeObject(first_color, first_shape, (8.0, 24.0), 5.0)]
    single, double = (Image.fromarray(render(objects)[0]) for objects in (once, twice))
    assert (
        detect(np.asarray(double)).instances[first_color] == 2
        and detect(np.asarray(single)).instances[first_color] == 1
    )
    assert score([item], [single], [item.graph])[0]["duplicate_rate"] == 0.0
    assert score([item], [double], [item.graph])[0]["duplicate_rate"] == 1.0
    relation = str(item.graph.relations[0])
    rows = [
        {"id": "0", "k": 0, "arm": arm, "guided_relations": [relation]}
        | score_image(ShapesDetector(), image, item.graph)
        for arm, image in (("unguided", single), ("guided", double))
    ]
    assert paired_duplicates(rows) == {"created": 1, "removed": 0}
    counts = duplicates([rows[1] | {"final_satisfied": [True]}])
    assert {key: counts[key] for key in counts if key.endswith("on_duplicates")} == {
        "satisfied_on_duplicates": 1,
        "uncertain_on_duplicates": 0,
        "relations_on_duplicates": 1,
    }
    assert duplicates([rows[1] | {"final_satisfied": [None]}])["uncertain_on_duplicates"] == 1
