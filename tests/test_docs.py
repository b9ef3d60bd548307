"""The README's tour, the guides' Python blocks and the examples run as written."""

import re
import runpy
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(path: Path) -> list[str]:
    """The Python blocks of a document, except those that need a model we do not ship ("path/to")."""
    blocks = re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)
    return [block for block in blocks if "path/to" not in block]


@pytest.mark.parametrize("document", ["README.md", "docs/getting-started.md", "docs/embedded-models.md"])
def test_python_blocks_of_the_docs_run(document, tmp_path, monkeypatch):
    blocks = python_blocks(ROOT / document)
    assert blocks, f"{document} has a Python block that runs here"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:  # one namespace: a guide's blocks build on each other
        exec(compile(block, document, "exec"), namespace)


def test_quickstart_example_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["quickstart.py", str(tmp_path)])
    runpy.run_path(str(ROOT / "examples" / "quickstart.py"), run_name="__main__")
    for name in ("unguided.png", "guided.png", "attention.png", "trace.png"):
        assert (tmp_path / name).stat().st_size > 0
