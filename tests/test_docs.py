"""The README's tour and the examples run as written (they need the embedded model's weights)."""

import re
import runpy
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "infsplign_scene" / "shapes" / "weights" / "model_index.json"
needs_model = pytest.mark.skipif(not WEIGHTS.exists(), reason="the embedded model's weights are not in this checkout")


@needs_model
def test_readme_tour_runs(tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert blocks, "the README has a Python tour"
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})


@needs_model
def test_quickstart_example_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["quickstart.py", str(tmp_path)])
    runpy.run_path(str(ROOT / "examples" / "quickstart.py"), run_name="__main__")
    for name in ("unguided.png", "guided.png", "attention.png", "trace.png"):
        assert (tmp_path / name).stat().st_size > 0
