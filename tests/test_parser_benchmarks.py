"""The parser's accuracy targets on the public prompt sets (skipped when ../shared is absent)."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "parser_eval.py"
TARGETS = {
    "SR2D (VISOR)": 1.0,
    "GenEval position": 1.0,
    "HRS-Bench spatial (expressible)": 0.95,
    "T2I-CompBench 2D spatial": 0.98,
}


def test_parser_meets_accuracy_targets(shared_benchmarks):
    spec = importlib.util.spec_from_file_location("parser_eval", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = {row["set"]: row for row in module.evaluate(shared_benchmarks, ("rules",), tuple(TARGETS))}
    for name, target in TARGETS.items():
        assert rows[name]["prompts"] > 0
        assert rows[name]["accuracy"] >= target, (name, rows[name]["failures"])
    assert rows["SR2D (VISOR)"]["prompts"] == 25280
    assert rows["SR2D (VISOR)"]["seconds"] < 10
