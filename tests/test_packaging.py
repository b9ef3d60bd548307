"""The built wheel carries the grammar and the embedded model, and works outside the source tree."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(ROOT)]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        pytest.skip(f"cannot build a wheel here (needs hatchling from the package index): {completed.stderr[-300:]}")
    return next(out.glob("infsplign_scene-*.whl"))


def test_wheel_contains_grammar_and_weights(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "infsplign_scene/grammar/lexicon.json" in names
    assert "infsplign_scene/grammar/prompt.lark" in names
    assert "infsplign_scene/models/shapes/unet/diffusion_pytorch_model.safetensors" in names
    assert "infsplign_scene/models/shapes/preset.json" in names
    assert "infsplign_scene/lab/nouns/classes.json" in names
    assert "infsplign_scene/lab/sets/sr2d.jsonl.gz" in names


def test_unpacked_wheel_parses_without_the_source_tree(wheel, tmp_path):
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    code = "import infsplign_scene as s; print(s.__file__); print(s.parse('a cat left of a dog').relations[0])"
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert str(tmp_path / "site") in completed.stdout
    assert "cat left_of dog" in completed.stdout
