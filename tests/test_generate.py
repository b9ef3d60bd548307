"""`generate`: images and a manifest per prompt set, paired arms, resumable after a kill, sharded."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from infsplign_scene import GuidanceConfig, InfsplignError, ScenePipeline
from infsplign_scene.cli import main
from infsplign_scene.lab.generate import generate, image_seed, manifest_rows

ROWS = [
    {"id": "pair", "prompt": "a red circle to the left of a blue square"},
    {"id": "stack", "prompt": "a red circle above a blue square"},
    {"id": "cycle", "prompt": "a red circle left of a blue square, the blue square left of the red circle"},
]


def write_set(path, rows=ROWS):
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    return path


def pixels(folder):
    return {p.relative_to(folder).as_posix(): np.asarray(Image.open(p)) for p in sorted(folder.rglob("*.png"))}


def test_images_manifest_refusals_and_a_rerun_that_skips_what_is_done(tiny_pipe, tmp_path):
    scene = ScenePipeline(tiny_pipe, GuidanceConfig(eta=20.0, policy="error"))
    prompt_set = write_set(tmp_path / "set.jsonl")
    out = tmp_path / "run"
    summary = generate(prompt_set, out, scene, images_per_prompt=2, sampling={"num_inference_steps": 2}, progress=False)
    assert (summary["written"], summary["refused"]) == (8, 4)  # the cycle is refused under policy "error"
    rows = manifest_rows(out)
    assert sorted((r["id"], r["k"], r["arm"]) for r in rows) == sorted(
        (row["id"], k, arm) for row in ROWS for k in range(2) for arm in ("unguided", "guided")
    )
    pair = [r for r in rows if r["id"] == "pair" and r["k"] == 1]
    assert {r["seed"] for r in pair} == {image_seed(0, "pair", 1)}  # paired arms: the same seed
    assert all(r["weights_sha256"] == rows[0]["weights_sha256"] and len(r["weights_sha256"]) == 64 for r in rows)
    image = Image.open(out / pair[0]["image"])
    assert json.loads(image.text["infsplign-scene"])["seed"] == image_seed(0, "pair", 1)
    assert all(r["refused"] and "contradicting" in r["refused"] for r in rows if r["id"] == "cycle")
    again = generate(prompt_set, out, scene, images_per_prompt=2, sampling={"num_inference_steps": 2}, progress=False)
    assert (again["written"], again["skipped"]) == (0, 12) and len(manifest_rows(out)) == 12
    with pytest.raises(InfsplignError, match="other settings \\(seed\\)"):
        generate(prompt_set, out, scene, images_per_prompt=2, seed=1, sampling={"num_inference_steps": 2})
    fresh = generate(prompt_set, out, scene, seed=1, sampling={"num_inference_steps": 2}, force=True, progress=False)
    assert fresh["written"] == 4 and len(manifest_rows(out)) == 6


def test_bad_lines_are_named_or_skipped(tiny_pipe, tmp_path):
    scene = ScenePipeline(tiny_pipe)
    prompt_set = tmp_path / "set.jsonl"
    prompt_set.write_text(json.dumps(ROWS[0]) + "\n{not json\n" + json.dumps({"id": "x"}) + "\n")
    with pytest.raises(InfsplignError, match="line 2"):
        generate(prompt_set, tmp_path / "out", scene)
    summary = generate(
        prompt_set,
        tmp_path / "out",
        scene,
        arms=("guided",),
        skip_bad=True,
        sampling={"num_inference_steps": 1},
        progress=False,
    )
    assert summary["written"] == 1
    with pytest.raises(InfsplignError, match="no such prompt set"):
        generate(tmp_path / "missing.jsonl", tmp_path / "out", scene)


@pytest.fixture(scope="module")
def model_folder(tiny_pipe, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny") / "model"
    tiny_pipe.save_pretrained(folder)
    return folder


def command(model_folder, prompt_set, out, *extra):
    return [
        sys.executable,
        "-m",
        "infsplign_scene.cli",
        "generate",
        str(prompt_set),
        "--out",
        str(out),
        "--model",
        str(model_folder),
        "--images-per-prompt",
        "3",
        "--batch-size",
        "1",
        "--steps",
        "3",
        "-q",
        *extra,
    ]


@pytest.fixture(scope="module")
def whole_run(model_folder, tmp_path_factory):
    """One uninterrupted run of the first two rows, through the same command line in this process
    (one thread, as the subprocesses): what resumed and sharded runs must equal."""
    folder = tmp_path_factory.mktemp("whole")
    prompt_set = write_set(folder / "set.jsonl", ROWS[:2])
    assert main(command(model_folder, prompt_set, folder / "run")[3:]) == 0
    return prompt_set, folder / "run"


def test_a_killed_run_resumes_to_the_same_files_and_rows(model_folder, whole_run, tmp_path):
    prompt_set, whole = whole_run
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    killed = tmp_path / "killed"
    process = subprocess.Popen(command(model_folder, prompt_set, killed), env=environment)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(manifest_rows(killed)) < 3 if killed.exists() else True:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    with (killed / "manifest.jsonl").open("a") as manifest:
        manifest.write('{"id": "pair", "k"')  # what a kill during a write leaves
    subprocess.run(command(model_folder, prompt_set, killed), check=True, env=environment, capture_output=True)
    keys = [(r["id"], r["k"], r["arm"]) for r in manifest_rows(killed)]
    assert len(keys) == len(set(keys)) == 12
    assert sorted(keys) == sorted((r["id"], r["k"], r["arm"]) for r in manifest_rows(whole))
    first, second = pixels(whole / "images"), pixels(killed / "images")
    assert first.keys() == second.keys() and all(np.array_equal(first[k], second[k]) for k in first)
    assert not list(killed.rglob("*.tmp"))


@pytest.mark.skipif(shutil.which("accelerate") is None, reason="the accelerate launcher is not installed")
def test_two_processes_under_accelerate_make_each_image_once_and_the_same_images(model_folder, whole_run, tmp_path):
    prompt_set, single = whole_run
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    sharded = tmp_path / "sharded"
    launch = [
        "accelerate",
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        *command(model_folder, prompt_set, sharded)[2:],
    ]
    done = subprocess.run(launch, env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(p.name for p in sharded.glob("manifest*.jsonl")) == ["manifest-0-of-2.jsonl", "manifest-1-of-2.jsonl"]
    keys = [(r["id"], r["k"], r["arm"]) for r in manifest_rows(sharded)]
    assert len(keys) == len(set(keys)) == 12
    first, second = pixels(single / "images"), pixels(sharded / "images")
    assert first.keys() == second.keys() and all(np.array_equal(first[k], second[k]) for k in first)


def test_the_built_in_sets_load_by_name_and_parse():
    from infsplign_scene import parse
    from infsplign_scene.lab.generate import built_in_sets, read_set

    sizes = {name: len(read_set(name)) for name in built_in_sets()}
    assert sizes == {
        "geneval_position": 100,
        "mission": 1,
        "multi_relation": 210,
        "nouns_pairs": 200,
        "nouns_triples": 200,
        "sr2d": 25280,
        "sr2d_nouns": 500,
        "t2i_compbench_spatial": 1000,
    }
    for name in ("geneval_position", "sr2d", "sr2d_nouns", "t2i_compbench_spatial"):  # one relation each
        rows = read_set(name, limit=50)
        assert len({row.id for row in rows}) == 50
        assert all(len(parse(row.prompt, backend="rules").relations) == 1 for row in rows)
    with pytest.raises(InfsplignError, match="built-in set: geneval_position, mission, multi_relation, nouns_pairs"):
        read_set("sr3d")


def test_the_multi_relation_set_is_the_one_its_builder_writes_and_its_cycles_contradict():
    from infsplign_scene import SceneGraph
    from infsplign_scene.analysis import analyze
    from infsplign_scene.lab.generate import read_set
    from infsplign_scene.lab.nouns.glyphs import noun_classes
    from infsplign_scene.lab.sets.multi_relation import COUNTS, build

    rows = read_set("multi_relation")
    assert [(r.id, r.graph) for r in rows] == [(r["id"], r["graph"]) for r in build()]
    assert len(rows) == sum(COUNTS.values())
    coco = {c.name for c in noun_classes() if c.coco}
    for row in rows:
        graph = SceneGraph.model_validate(row.graph)
        assert {o.name for o in graph.objects} <= coco
        contradicts = bool(analyze(graph).conflicts)
        assert contradicts == row.id.startswith("cycle"), row.id


def test_the_noun_model_sets_are_the_ones_their_builder_writes_and_use_known_nouns():
    from infsplign_scene import SceneGraph, parse
    from infsplign_scene.analysis import analyze
    from infsplign_scene.lab.generate import read_set
    from infsplign_scene.lab.nouns.glyphs import noun_classes
    from infsplign_scene.lab.sets.nouns import MISSION, build

    built = build()
    known = {form for c in noun_classes() for form in (c.name, *c.synonyms)}
    for name, expected in built.items():
        rows = read_set(name)
        assert [(r.id, r.prompt, r.graph) for r in rows] == [
            (r["id"], r.get("prompt"), r.get("graph")) for r in expected
        ], name
        for row in rows:
            graph = SceneGraph.model_validate(row.graph) if row.graph else parse(row.prompt)
            assert {o.name for o in graph.objects} <= known and not analyze(graph).conflicts, row.id
            sizes = {"nouns_pairs": (2, 1), "nouns_triples": (3, 2), "mission": (3, 2), "sr2d_nouns": (2, 1)}
            assert (len(graph.objects), len(graph.relations)) == sizes[name], row.id
    assert read_set("mission")[0].prompt == MISSION
    sr2d = {row.id: row.prompt for row in read_set("sr2d")}
    assert all(sr2d[row.id] == row.prompt for row in read_set("sr2d_nouns"))
