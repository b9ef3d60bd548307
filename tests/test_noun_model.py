"""The shipped noun model: the default, loaded offline, and its vocabulary error (no font needed)."""

import json

import pytest
from PIL import Image

from infsplign_scene import VocabularyError, compose
from infsplign_scene.cli import main
from infsplign_scene.embedded import DEFAULT_MODEL, embedded_model_dir, embedded_model_names
from infsplign_scene.guidance import ScenePipeline
from infsplign_scene.lab.nouns.glyphs import noun_classes

FOLDER = embedded_model_dir("nouns") if "nouns" in embedded_model_names() else None
pytestmark = pytest.mark.skipif(FOLDER is None, reason="the noun model's weights are absent")


def test_the_noun_model_is_the_default_and_ships_small_safetensors_with_its_preset():
    assert DEFAULT_MODEL == "nouns"
    files = [p for p in FOLDER.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in {".bin", ".pt", ".pth", ".ckpt"}]
    assert sum(p.stat().st_size for p in files) <= 50 * 2**20
    preset = json.loads((FOLDER / "preset.json").read_text())
    assert set(preset["nouns"]) == {form for c in noun_classes() for form in (c.name, *c.synonyms)}
    assert "SIL Open Font License 1.1" in (FOLDER / "README.md").read_text()


def test_the_mission_example_composes_offline_on_the_default_model(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = compose("a cat left of a dog, a lamp above the cat", seed=[0, 1], num_inference_steps=4, progress=False)
    assert [image.size for image in result.images] == [(64, 64), (64, 64)]
    assert {str(r) for r in result.graph.relations} == {"cat left_of dog", "lamp above cat"}
    assert result.images[0].tobytes() != result.images[1].tobytes()  # one image per seed


def test_an_unknown_noun_is_named_with_the_nearest_known_one_and_the_list(capsys):
    scene_pipe = ScenePipeline.from_pretrained()
    with pytest.raises(VocabularyError) as caught:
        scene_pipe("a girafe left of a dog", seed=0, num_inference_steps=1)
    message = str(caught.value)
    assert "'girafe' (did you mean 'giraffe'?)" in message
    listed = message.split("the nouns it knows: ")[1].split(", ")
    assert "dog" in listed and "" not in listed and all(word.replace(" ", "").isalpha() for word in listed)
    assert main(["compose", "a red circle left of a dog", "-o", "x.png"]) == 2
    assert "'circle'" in capsys.readouterr().err


def test_the_contact_sheet_draws_what_the_detector_reads_beside_each_arm(tmp_path):
    import numpy as np

    from infsplign_scene.lab.generate import generate, manifest_rows
    from infsplign_scene.lab.nouns.contact_sheet import SCALE, contact_sheet
    from infsplign_scene.lab.nouns.detector import detect

    scene_pipe = ScenePipeline.from_pretrained()
    generate("nouns_pairs", tmp_path, scene_pipe, limit=2, sampling={"num_inference_steps": 4}, progress=False)
    sheet = contact_sheet(tmp_path, prompts=2, per_row=2)
    assert sheet.size == (4 * 64 * SCALE, 64 * SCALE + 28)
    first = next(r for r in manifest_rows(tmp_path) if r["arm"] == "unguided")
    with Image.open(tmp_path / first["image"]) as image:
        plain = np.asarray(image.convert("RGB").resize((64 * SCALE, 64 * SCALE), Image.NEAREST))
        drawn = bool(detect(image.convert("RGB")))
    cell = np.asarray(sheet)[: 64 * SCALE, : 64 * SCALE]
    assert (not np.array_equal(cell, plain)) == drawn  # boxes drawn exactly where something was read
