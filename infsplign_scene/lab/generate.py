"""Generate a prompt set's images, unguided and guided on the same seeds, resumably and in shards.

    infsplign-scene generate SET.jsonl --out DIR [--images-per-prompt 4 --arms unguided,guided]
    accelerate launch --multi_gpu --num_processes 4 -m infsplign_scene.cli generate SET.jsonl --out DIR --device cuda

SET is a JSONL (or JSON list) file of rows {"id": ..., "prompt": "..."} or {"id": ..., "graph":
{...}} (and an optional "kind", carried to the results). Image k of a row is sampled from a seed
derived from the run's seed, the row's id and k, so any shard reproduces it, or from `seeds[k]`
when a list of seeds is given. Arms: `unguided` and `guided`, or a conflict policy (`drop`,
`keep`, `pcgrad`, `priority`, `error`: the analysis policy and the gradients' combination).
Each image is written to a temporary name and renamed; its manifest row is appended and flushed
after the image is on disk; a rerun skips finished rows, and a torn last line (a killed run) is
cut off and redone. Work is split over processes by accelerate's
process state (`accelerate launch`) or by `shard=(i, n)` (job arrays); each process appends to
its own manifest file. A row that cannot be sampled (a parse error, a conflict under policy
`error`) is recorded as refused, never a crash.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from tqdm.auto import tqdm

from ..config import GuidanceConfig
from ..errors import InfsplignError, format_validation_error, quoted
from ..guidance import ScenePipeline
from ..parsing import load_scene

MAX_ROWS = 1_000_000
SETS_DIR = Path(__file__).parent / "sets"
RUN_FILE = "run.json"
# What each arm changes in the guidance settings
ARMS: dict[str, dict] = {
    "unguided": {"eta": 0.0},
    "guided": {},
    "drop": {"policy": "drop", "combination": "sum"},
    "keep": {"policy": "keep", "combination": "sum"},
    "pcgrad": {"policy": "keep", "combination": "pcgrad"},
    "priority": {"policy": "keep", "combination": "priority"},
    "error": {"policy": "error", "combination": "sum"},
}


def safe_file_name(text: str) -> str:
    """A file name from free text: only letters, digits, '_', '-' and '.', never a path or a dot file."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:120].lstrip(".")
    return name or "_"


def read_rows(path: Path) -> list[dict]:
    """The rows written so far; a torn last line (a run stopped mid-write) is cut off, to be redone."""
    if not path.exists():
        return []
    rows, kept = [], 0
    data = path.read_bytes()
    for line in data.splitlines(keepends=True):
        try:
            rows.append(json.loads(line))
        except (json.JSONDecodeError, UnicodeDecodeError):
            break
        kept += len(line)
    if kept < len(data):
        with path.open("r+b") as handle:
            handle.truncate(kept)
    return rows


class SetRow(BaseModel):
    """One row of a prompt set."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=200)
    prompt: str | None = Field(None, max_length=4000)
    graph: dict | None = None
    kind: str | None = Field(None, max_length=64)

    @model_validator(mode="after")
    def _one_source(self) -> SetRow:
        if (self.prompt is None) == (self.graph is None):
            raise ValueError("a row needs exactly one of 'prompt' and 'graph'")
        return self


class RunSettings(BaseModel):
    """What makes a run: a rerun into the same folder must have the same settings."""

    set: str
    model: str
    weights_sha256: str
    seed: int
    images_per_prompt: int = Field(ge=1, le=64)
    seeds: list[int] | None = None
    arms: tuple[str, ...]
    guidance: dict
    sampling: dict


def built_in_sets() -> list[str]:
    """The names of the prompt sets shipped with the lab (lab/sets/SOURCES.md: origins, licences)."""
    return sorted(p.name.removesuffix(".jsonl.gz") for p in SETS_DIR.glob("*.jsonl.gz"))


def read_set(path: Path, limit: int | None = None, skip_bad: bool = False) -> list[SetRow]:
    """The rows of a JSONL or JSON-list file, or of a built-in set by name; a bad line is an error
    naming its number (or skipped)."""
    path = Path(path)
    if not path.is_file() and str(path) in built_in_sets():
        path = SETS_DIR / f"{path}.jsonl.gz"
    if not path.is_file():
        known = ", ".join(built_in_sets())
        raise InfsplignError(f"no such prompt set: {quoted(str(path))} (a file, or a built-in set: {known})")
    try:
        raw = path.read_bytes()
        text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode("utf-8")
    except UnicodeDecodeError as error:
        raise InfsplignError(f"the prompt set {quoted(str(path))} is not UTF-8 (byte {error.start})") from None
    if text.lstrip().startswith("["):
        try:
            lines = [json.dumps(item) for item in json.loads(text)]
        except (ValueError, RecursionError) as error:
            raise InfsplignError(f"the prompt set {quoted(str(path))} is not valid JSON: {error}") from None
    else:
        lines = text.splitlines()
    rows, seen = [], set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = SetRow.model_validate(json.loads(line))
            if row.id in seen:
                raise ValueError(f"the id {row.id!r} appears twice")
        except (ValueError, RecursionError, ValidationError) as error:
            if skip_bad:
                continue
            reason = format_validation_error(error, "row") if isinstance(error, ValidationError) else str(error)
            raise InfsplignError(f"{path.name}, line {number}: {reason} (--skip-bad skips such lines)") from None
        seen.add(row.id)
        rows.append(row)
        if len(rows) >= (limit or MAX_ROWS):
            break
    return rows


def weights_hash(pipe: Any) -> str:
    """SHA-256 of the weights: of the safetensors files of the folder the pipeline came from, else
    of its UNet's and text encoder's tensors."""
    digest = hashlib.sha256()
    folder = Path(str(getattr(pipe, "name_or_path", "") or ""))
    files = sorted(folder.rglob("*.safetensors")) if str(folder) and folder.is_dir() else []
    if files:
        for path in files:
            digest.update(str(path.relative_to(folder)).encode())
            with path.open("rb") as handle:
                while block := handle.read(1 << 20):
                    digest.update(block)
    else:
        for part in (pipe.unet, pipe.text_encoder):
            for name, tensor in sorted(part.state_dict().items()):
                digest.update(name.encode())
                digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def image_seed(seed: int, row_id: str, k: int) -> int:
    """The seed of image k of a row: the same in every shard and every rerun."""
    digest = hashlib.sha256(f"{seed}\0{row_id}\0{k}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


@dataclass(frozen=True)
class Task:
    row: SetRow
    k: int
    arm: str
    seed: int

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.row.id, self.k, self.arm)


def shard_of(shard: tuple[int, int] | None, cpu: bool = True) -> tuple[int, int]:
    """(index, count) of this process: `shard` if given, else accelerate's process state (`cpu`:
    the processes sample on CPUs, so the state joins them over gloo)."""
    if shard is not None:
        index, count = shard
        if not 0 <= index < count:
            raise InfsplignError(f"shard {index}/{count}: the index must be in 0..{count - 1}")
        return shard
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # under accelerate launch (or torchrun)
        from accelerate import PartialState

        state = PartialState(cpu=cpu)
        return state.process_index, state.num_processes
    return 0, 1


def manifest_rows(out: Path) -> list[dict]:
    """Every shard's rows (each manifest's torn last line cut off)."""
    return [row for path in sorted(out.glob("manifest*.jsonl")) for row in read_rows(path)]


def check_settings(out: Path, settings: RunSettings, force: bool) -> None:
    """Refuse a folder that holds a run with other settings (naming them), unless `force`."""
    path = out / RUN_FILE
    if path.exists() and not force:
        previous = json.loads(path.read_text())
        differing = [key for key, value in settings.model_dump(mode="json").items() if previous.get(key) != value]
        if differing:
            raise InfsplignError(
                f"{out} holds a run with other settings ({', '.join(differing)}); use another folder, or --force"
            )
    if force:
        for old in out.glob("manifest*.jsonl"):
            old.unlink()
    path.write_text(json.dumps(settings.model_dump(mode="json"), indent=2))


def generate(
    set_path: Path,
    out: Path,
    scene_pipe: ScenePipeline,
    *,
    images_per_prompt: int = 1,
    arms: tuple[str, ...] = ("unguided", "guided"),
    seed: int = 0,
    seeds: list[int] | None = None,
    limit: int | None = None,
    batch_size: int = 8,
    config: GuidanceConfig | None = None,
    sampling: dict | None = None,
    shard: tuple[int, int] | None = None,
    skip_bad: bool = False,
    force: bool = False,
    progress: bool = True,
) -> dict:
    """Sample every missing image of this process's share; returns a one-line summary's numbers.
    `seeds`: image k of every row is sampled from seeds[k] (images_per_prompt is their number)."""
    unknown = [arm for arm in arms if arm not in ARMS]
    if unknown or not arms:
        raise InfsplignError(f"arms are some of {', '.join(ARMS)}; got {', '.join(arms) or 'none'}")
    if seeds is not None:
        images_per_prompt = len(seeds)
    rows = read_set(set_path, limit, skip_bad)
    config = config or scene_pipe.config
    sampling = dict(sampling or {})
    index, count = shard_of(shard, cpu=scene_pipe.device.type == "cpu")
    out.mkdir(parents=True, exist_ok=True)
    settings = RunSettings(
        set=str(set_path),
        model=str(getattr(scene_pipe.pipe, "name_or_path", "") or type(scene_pipe.pipe).__name__),
        weights_sha256=weights_hash(scene_pipe.pipe),
        seed=seed,
        images_per_prompt=images_per_prompt,
        seeds=seeds,
        arms=tuple(arms),
        guidance=config.model_dump(),
        sampling=scene_pipe.preset.sampling.updated(**sampling).model_dump(),
    )
    if index == 0:
        check_settings(out, settings, force)
    done = {(r["id"], r["k"], r["arm"]) for r in manifest_rows(out)}
    tasks = [
        Task(row, k, arm, seeds[k] if seeds is not None else image_seed(seed, row.id, k))
        for position, row in enumerate(rows)
        for k in range(images_per_prompt)
        for arm in arms
        if (position * images_per_prompt + k) % count == index
    ]
    todo = [task for task in tasks if task.key not in done]
    manifest = out / (f"manifest-{index}-of-{count}.jsonl" if count > 1 else "manifest.jsonl")
    read_rows(manifest)  # cuts a torn last line before appending
    started, written, refused = time.perf_counter(), 0, 0
    with manifest.open("a") as sink, tqdm(total=len(todo), unit="image", disable=not progress) as bar:
        for arm in arms:
            arm_config = config.updated(**ARMS[arm])
            for batch in _batches([t for t in todo if t.arm == arm], batch_size):
                for row in _sample(scene_pipe, batch, arm_config, sampling, out, settings):
                    sink.write(json.dumps(row) + "\n")
                    sink.flush()
                    os.fsync(sink.fileno())
                    written += row["refused"] is None
                    refused += row["refused"] is not None
                bar.update(len(batch))
    seconds = time.perf_counter() - started
    return {"written": written, "refused": refused, "skipped": len(tasks) - len(todo), "seconds": seconds}


def _batches(tasks: list[Task], size: int) -> Iterator[list[Task]]:
    for start in range(0, len(tasks), size):
        yield tasks[start : start + size]


def _sample(scene_pipe, batch: list[Task], config, sampling: dict, out: Path, run: RunSettings) -> list[dict]:
    """Rows for one batch: the refused ones, then the sampled ones (images on disk first)."""
    rows, graphs, ready = [], [], []
    for task in batch:
        try:
            graphs.append(load_scene(task.row.graph if task.row.graph is not None else task.row.prompt))
            ready.append(task)
        except InfsplignError as error:
            rows.append(_row(task, None, run, config, refused=str(error)))
    if not ready:
        return rows
    started = time.perf_counter()
    try:
        result = scene_pipe(graphs, seed=[t.seed for t in ready], config=config, progress=False, **sampling)
    except InfsplignError as error:  # e.g. a conflict under policy "error": the batch's rows are refused one by one
        if len(ready) == 1:
            return [*rows, _row(ready[0], None, run, config, refused=str(error))]
        return rows + [r for task in ready for r in _sample(scene_pipe, [task], config, sampling, out, run)]
    seconds = (time.perf_counter() - started) / len(ready)
    states, centroid_states = result.final_satisfied(), result.final_satisfied(checked=False)
    for b, task in enumerate(ready):
        folder = out / "images" / task.arm
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / safe_file_name(f"{task.row.id}_{task.k}.png")
        temporary = path.with_suffix(".tmp")
        result.save(temporary, image=b)
        os.replace(temporary, path)
        # the graph as stated: every stated relation is judged, also those a policy dropped
        row = _row(task, graphs[b], run, config, image=str(path.relative_to(out)), seconds=seconds)
        row["final_satisfied"] = states[b] if states else None
        row["centroids_satisfied"] = centroid_states[b] if centroid_states else None
        row["relations"] = [str(r) for r in result.objective.relations[b]]
        rows.append(row)
    return rows


def _row(
    task: Task, graph: Any, run: RunSettings, config, image: str | None = None, seconds: float = 0.0, refused=None
) -> dict:
    return {
        "id": task.row.id,
        "kind": task.row.kind,
        "k": task.k,
        "arm": task.arm,
        "seed": task.seed,
        "prompt": task.row.prompt,
        "graph": graph.model_dump(mode="json", exclude_none=True) if graph is not None else task.row.graph,
        "model": run.model,
        "weights_sha256": run.weights_sha256,
        "guidance": config.model_dump(),
        "image": image,
        "seconds": seconds,
        "refused": refused,
    }
