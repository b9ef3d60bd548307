"""Bad input gets a typed error and a clear message; the command line keeps its exit contract."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from infsplign_scene import ConfigError, InfsplignError, SceneGraph, SceneGraphError, load_scene
from infsplign_scene.cli import main
from infsplign_scene.errors import NonFiniteError, ParseError
from infsplign_scene.guidance import ScenePipeline
from infsplign_scene.runtime import check_device

PROMPT = "a red circle to the left of a blue square"


def run(capsys, *arguments: str) -> tuple[int, str, str]:
    status = main(list(arguments))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_exit_codes_follow_the_contract(capsys, tmp_path):
    assert run(capsys, "--version")[0] == 0
    assert run(capsys, "-h")[0] == 0
    assert run(capsys, "check", "a cat left of a dog, the dog left of the cat")[0] == 1  # conflicts remain
    status, _, err = run(capsys, "parse")  # a usage error
    assert status == 2 and "Missing argument" in err
    status, _, err = run(capsys, "parse", "a cat left of")
    assert status == 2 and err.startswith("error: ")
    status, _, err = run(capsys, "no-such-command")
    assert status == 2


def test_an_internal_error_is_one_line_and_exit_3_unless_debug(capsys, monkeypatch):
    import infsplign_scene.cli as cli

    def broken(*args, **kwargs):
        raise KeyError("surprise")

    monkeypatch.setattr(cli, "parse", broken)
    status, _, err = run(capsys, "parse", "a cat left of a dog")
    assert status == 3 and err.count("\n") == 1 and "internal error: KeyError" in err and "--debug" in err
    with pytest.raises(KeyError):
        main(["--debug", "parse", "a cat left of a dog"])


def test_a_file_name_that_is_no_file_is_an_error_not_a_prompt(capsys, tmp_path):
    for command in ("check", "compose"):
        status, _, err = (
            run(capsys, command, str(tmp_path / "missing.json"), "-o", str(tmp_path / "x.png"))[:3]
            if (command == "compose")
            else run(capsys, command, "missing.json")
        )
        assert status == 2 and "no such file" in err
    with pytest.raises(SceneGraphError, match="no such file"):
        load_scene("graphs/scene")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"objects":' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
        ('{"objects": [{"id": "a", "name": "a", "count": ' + "9" * 5000 + "}]}", "invalid JSON"),
        ("[1, 2]", "a JSON object"),
        ('{"objects": [{"id": "a b", "name": "a"}]}', "objects.0.id"),
    ],
)
def test_json_input_is_bounded_and_typed(text, message):
    with pytest.raises(SceneGraphError, match=message):
        SceneGraph.load(text)


def test_a_file_that_is_not_utf8_is_a_typed_error(tmp_path):
    path = tmp_path / "graph.json"
    path.write_bytes(b'{"objects": "\xff\xfe"}')
    with pytest.raises(SceneGraphError, match="not UTF-8"):
        load_scene(str(path))


def test_long_input_is_quoted_in_a_window_around_the_problem():
    text = "a cat left of a dog " * 5000 + "left of"
    with pytest.raises(ParseError) as raised:
        load_scene(text, backend="rules")
    assert len(str(raised.value)) < 400


def test_a_device_this_torch_cannot_use_is_a_typed_error():
    if not torch.cuda.is_available():
        with pytest.raises(InfsplignError, match="use --device cpu"):
            check_device("cuda")
    with pytest.raises(InfsplignError, match="not a torch device"):
        check_device("warp-drive")
    assert check_device("cpu").type == "cpu"


def test_models_that_cannot_be_loaded_are_typed_errors(tiny_pipe, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(InfsplignError, match="no model folder"):
        ScenePipeline.from_pretrained(tmp_path / "nothing")
    with pytest.raises(InfsplignError, match="cannot load"):
        ScenePipeline.from_pretrained("someone/not-cached-here")
    tiny_pipe.save_pretrained(tmp_path / "pickled", safe_serialization=False)
    with pytest.raises(InfsplignError, match="cannot load"):
        ScenePipeline.from_pretrained(tmp_path / "pickled")


def test_non_finite_latents_never_become_an_image(tiny_pipe):
    def poison(pipe, step, timestep, tensors):
        return {"latents": tensors["latents"] * float("nan")}

    with pytest.raises(NonFiniteError) as raised:
        ScenePipeline(tiny_pipe)(PROMPT, seed=0, num_inference_steps=2, callback_on_step_end=poison, progress=False)
    assert raised.value.images == [0]


def test_settings_are_bounded(capsys, tmp_path):
    with pytest.raises(ConfigError):
        ScenePipeline.from_pretrained("shapes").config.updated(eta=float("inf"))
    status, _, err = run(
        capsys, "compose", PROMPT, "--model", "shapes", "-o", str(tmp_path / "x.png"), "--eta", "1e308"
    )
    assert status == 2 and "eta" in err and not (tmp_path / "x.png").exists()


def test_the_png_and_the_trace_carry_prompt_seed_model_and_settings(capsys, tmp_path):
    out, trace = tmp_path / "out.png", tmp_path / "trace.json"
    status, stdout, _ = run(
        capsys,
        "compose",
        PROMPT,
        "--model",
        "shapes",
        "-o",
        str(out),
        "--seed",
        "3",
        "--upscale",
        "4",
        "--trace",
        str(trace),
    )
    assert status == 0 and "satisfied" in stdout
    image = Image.open(out)
    assert image.size == (128, 128) and image.text["prompt"] == PROMPT
    metadata = json.loads(image.text["infsplign-scene"])
    assert (
        metadata["seed"] == 3
        and metadata["model"].endswith("shapes")
        and metadata["sampling"]["num_inference_steps"] == 40
    )
    assert metadata["encoded_prompt"] == "a red circle and a blue square"
    written = json.loads(trace.read_text())
    assert written["metadata"] == metadata and len(written["steps"]) == 40
    status, stdout, _ = run(capsys, "compose", PROMPT, "--model", "shapes", "-o", str(out), "-q")
    assert status == 0 and stdout == ""


def test_light_commands_import_no_torch():
    code = (
        "import sys; from infsplign_scene.cli import main; main(['parse', 'a cat left of a dog']); "
        "main(['schema']); assert 'torch' not in sys.modules and 'diffusers' not in sys.modules, 'heavy import'"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr


def test_a_one_word_prompt_the_system_refuses_as_a_file_name_is_no_file(capsys):
    text = "\\" + "ᑚ" * 400  # one word with a path separator, too long for a file name
    with pytest.raises(SceneGraphError, match="no such file"):
        load_scene(text)
    assert run(capsys, "check", "--", text)[0] == 2


def test_compose_in_bfloat16_and_offload_options(capsys, tmp_path):
    out = tmp_path / "bf16.png"
    bfloat16 = ["--dtype", "bfloat16", "--steps", "4", "-q"]
    status, stdout, _ = run(capsys, "compose", PROMPT, "--model", "shapes", "-o", str(out), *bfloat16)
    assert status == 0 and np.isfinite(np.asarray(Image.open(out), dtype=float)).all()
    assert run(capsys, "compose", PROMPT, "--model", "shapes", "-o", str(out), "--dtype", "float8")[0] == 2
    status, _, err = run(capsys, "compose", PROMPT, "--model", "shapes", "-o", str(out), "--offload")
    assert status == 2 and "--device cuda" in err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="model CPU offload needs a CUDA device")
def test_compose_with_model_cpu_offload_on_cuda(capsys, tmp_path):
    out = tmp_path / "offload.png"
    assert (
        run(capsys, "compose", PROMPT, "--model", "shapes", "-o", str(out), "--device", "cuda", "--offload", "-q")[0]
        == 0
    )
