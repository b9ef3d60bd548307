"""The lab's commands on the `infsplign-scene` command line: bench, generate, study.

Registered by the command line; heavy modules load inside each command, so that the light
commands stay light.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from ..analysis import POLICIES
from ..errors import InfsplignError


def register_lab_commands(app: typer.Typer, fail: Callable[[Exception], None]) -> None:
    """Add the lab's commands to `app`; `fail` reports bad input (exit status 2)."""
    _fail = fail

    bench_app = typer.Typer(help="Benchmarks of guided against unguided sampling.", no_args_is_help=True)
    app.add_typer(bench_app, name="bench")

    @bench_app.command("shapes")
    def bench_shapes_command(
        out: Annotated[
            Path, typer.Option(help="Run folders, one per suite (images, manifest, scores, summary); a re-run resumes.")
        ] = Path("runs/bench_shapes"),
        images: Annotated[int, typer.Option(help="Images per suite (the targets are measured with >= 200).")] = 200,
        seed: Annotated[int, typer.Option(help="Seed of the suites and of the sampling.")] = 0,
        json_path: Annotated[Path | None, typer.Option("--json", help="Write the results as JSON.")] = None,
        grid_path: Annotated[
            Path | None, typer.Option("--grid", help="Write a PNG grid: unguided rows above guided.")
        ] = None,
        suites: Annotated[str, typer.Option(help="Comma-separated suites (default: all).")] = "",
        eta: Annotated[float | None, typer.Option(help="Override the model family's default eta.")] = None,
        prompt: Annotated[
            str,
            typer.Option(
                help="'objects': prompts name the objects only, as in training ('a red circle and a blue square'); "
                "'relations': the relations are written into the prompt too (words the model never saw)."
            ),
        ] = "objects",
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    ) -> None:
        """Unguided vs guided on the embedded shapes model: each suite made by `generate` and judged by
        `score` with the exact detector."""
        from .shapes.bench import SUITES, check_prompt_style, run_benchmark

        chosen = tuple(s for s in suites.split(",") if s) or SUITES
        unknown = [s for s in chosen if s not in SUITES]
        if unknown:
            _fail(InfsplignError(f"unknown suite(s) {unknown}; choose from {', '.join(SUITES)}"))
        try:
            check_prompt_style(prompt)
        except InfsplignError as error:
            _fail(error)
        from ..guidance import ScenePipeline

        scene_pipe = ScenePipeline.from_pretrained("shapes")
        try:
            config = scene_pipe.config if eta is None else scene_pipe.config.updated(eta=eta)
        except InfsplignError as error:
            _fail(error)
        results = run_benchmark(
            out,
            images=images,
            seed=seed,
            suites=chosen,
            scene_pipe=scene_pipe,
            config=config,
            grid_path=grid_path,
            prompt=prompt,
            progress=not quiet,
        )
        text = json.dumps(results, indent=2)
        if json_path is not None:
            json_path.write_text(text)
        typer.echo(text)

    @app.command("generate")
    def generate_command(
        prompt_set: Annotated[
            Path,
            typer.Argument(
                help="A JSONL (or JSON list) file of {id, prompt} or {id, graph} rows, or a built-in set: "
                "sr2d, geneval_position, t2i_compbench_spatial, multi_relation."
            ),
        ],
        out: Annotated[Path, typer.Option(help="Output folder: images/<arm>/<id>_<k>.png, manifest*.jsonl, run.json.")],
        model: Annotated[
            str | None, typer.Option(help="An embedded model's name or a Stable Diffusion folder.")
        ] = None,
        images_per_prompt: Annotated[int, typer.Option(min=1, max=64, help="Images per prompt (VISOR uses 4).")] = 1,
        arms: Annotated[
            str,
            typer.Option(
                help="Comma-separated, all on the same seeds: unguided, guided, or conflict policies "
                "(drop, keep, pcgrad, priority, error) each guided with that policy."
            ),
        ] = "unguided,guided",
        seed: Annotated[int, typer.Option(help="The run's seed; each image's seed derives from it, its id and k.")] = 0,
        limit: Annotated[int | None, typer.Option(min=1, help="Use the first N rows of the set.")] = None,
        batch_size: Annotated[int, typer.Option(min=1, max=256, help="Images sampled together.")] = 8,
        eta: Annotated[float | None, typer.Option(help="InfSplign gradient weight of the guided arm.")] = None,
        steps: Annotated[int | None, typer.Option(help="Denoising steps (default per model family).")] = None,
        guidance_scale: Annotated[float | None, typer.Option(help="Classifier-free guidance scale.")] = None,
        policy: Annotated[str, typer.Option(help=f"Conflict policy: {', '.join(POLICIES)}.")] = "keep",
        device: Annotated[
            str, typer.Option(help="torch device (under accelerate launch: each process's own).")
        ] = "cpu",
        shard: Annotated[str | None, typer.Option(help="I/N: this job's share of the work (job arrays).")] = None,
        skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip unreadable lines of the set.")] = False,
        force: Annotated[bool, typer.Option("--force", help="Start over in a folder that holds another run.")] = False,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    ) -> None:
        """Generate a prompt set's images, unguided and guided on the same seeds; resumable, sharded.

        Run it again to resume. Across processes: accelerate launch --num_processes N -m
        infsplign_scene.cli generate ... (each process on its own device), or --shard I/N."""
        from ..guidance import ScenePipeline
        from ..runtime import check_device
        from .generate import generate

        try:
            shard_pair = _shard(shard)
            if int(os.environ.get("WORLD_SIZE", "1")) > 1 and device.startswith("cuda"):
                from accelerate import PartialState

                device = str(PartialState().device)
            check_device(device)
            scene_pipe = ScenePipeline.from_pretrained(model).to(device)
            updates = {"policy": policy} | ({"eta": eta} if eta is not None else {})
            sampling = {k: v for k, v in (("num_inference_steps", steps), ("guidance_scale", guidance_scale)) if v}
            summary = generate(
                prompt_set,
                out,
                scene_pipe,
                images_per_prompt=images_per_prompt,
                arms=tuple(a.strip() for a in arms.split(",") if a.strip()),
                seed=seed,
                limit=limit,
                batch_size=batch_size,
                config=scene_pipe.config.updated(**updates),
                sampling=sampling,
                shard=shard_pair,
                skip_bad=skip_bad,
                force=force,
                progress=not quiet,
            )
        except InfsplignError as error:
            _fail(error)
        rate = summary["written"] / summary["seconds"] if summary["seconds"] else 0.0
        typer.echo(
            f"{summary['written']} images written ({rate:.2f}/s), {summary['refused']} refused, "
            f"{summary['skipped']} already done; manifest in {out}"
        )

    def _shard(text: str | None) -> tuple[int, int] | None:
        if text is None:
            return None
        index, _, count = text.partition("/")
        if not (index.isdigit() and count.isdigit()) or int(count) < 1:
            raise InfsplignError(f"--shard takes I/N, such as 0/4; got {text!r}")
        return int(index), int(count)

    @app.command("score")
    def score_command(
        run: Annotated[Path, typer.Argument(help="A folder written by `generate`.")],
        detector: Annotated[
            str,
            typer.Option(
                help="shapes or nouns (the embedded models' exact detectors; nouns-forced: each named object "
                "takes the blob most like it), or an open-vocabulary one from --detector-path: owlvit (as VISOR), "
                "owlv2, grounding-dino."
            ),
        ] = "shapes",
        detector_path: Annotated[Path | None, typer.Option(help="A local folder of the detector's weights.")] = None,
        threshold: Annotated[
            float, typer.Option(help="Detection score threshold of open-vocabulary detectors (VISOR uses 0.1).")
        ] = 0.1,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    ) -> None:
        """Score a generated run: objects found, relations judged, VISOR and multi-relation tables.

        Writes scores.jsonl (per image; a rerun scores only new images), summary.json and
        summary.md into the run's folder."""
        from .detectors import OPEN_VOCABULARY, ShapesDetector, ZeroShotDetector
        from .score import refused_counts, score_run, summarise
        from .summaries import write_summary

        try:
            if detector == "shapes":
                chosen = ShapesDetector()
            elif detector in ("nouns", "nouns-forced"):
                from .nouns.detector import NounDetector

                chosen = NounDetector(forced=detector == "nouns-forced")
            elif detector in OPEN_VOCABULARY:
                if detector_path is None:
                    raise InfsplignError(f"--detector {detector} needs --detector-path (a local folder of its weights)")
                chosen = ZeroShotDetector(detector_path, threshold=threshold)
                if chosen.kind != detector:
                    raise InfsplignError(f"{detector_path} holds a {chosen.kind} model, not {detector}")
            else:
                raise InfsplignError(
                    f"unknown detector {detector!r}; choose shapes, nouns, nouns-forced, {', '.join(OPEN_VOCABULARY)}"
                )
            rows = score_run(run, chosen, progress=not quiet)
        except InfsplignError as error:
            _fail(error)
        write_summary(summarise(rows, refused_counts(run)), run)
        typer.echo((run / "summary.md").read_text())

    @app.command("study")
    def study_command(
        spec: Annotated[Path, typer.Argument(help="Study specification (JSON): graphs, seeds, policies.")],
        out: Annotated[
            Path, typer.Option(help="Output folder: images/, manifest.jsonl, scores.jsonl, summary.md/.json/.png.")
        ] = Path("study"),
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    ) -> None:
        """Run a conflict study (graphs x seeds x policies) with generate and score; a re-run resumes."""
        from .study import run_study

        try:
            run_study(spec, out, progress=not quiet)
        except InfsplignError as error:
            _fail(error)
        typer.echo((out / "summary.md").read_text())
