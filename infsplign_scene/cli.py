"""The `infsplign-scene` command line.

Exit status: 0 success; 1 only when `check` finds conflicts that remain; 2 bad input (every
`InfsplignError`, with a one-line message); 3 an internal error (one line; `--debug` shows the
traceback). Light commands (parse, check, schema, --help) import no torch.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer

from .analysis import POLICIES, analyze
from .errors import InfsplignError, ParseWarning
from .lab.commands import register_lab_commands
from .parsing import load_scene, parse
from .scene import SceneGraph

app = typer.Typer(
    help="Put objects where the prompt says: parse spatial prompts into scene graphs, check them, "
    "and guide Stable Diffusion sampling with InfSplign. Exit status: 0 success, 1 conflicts remain "
    "(check), 2 bad input, 3 internal error (rerun with --debug for the traceback).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
BAD_INPUT, INTERNAL_ERROR = 2, 3


def _fail(error: Exception) -> None:
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(BAD_INPUT)


def _show_warning(message, category, *args, **kwargs) -> None:  # noqa: ANN001 - warnings' signature
    """Our warnings as one line each on stderr; other libraries' only with --debug."""
    if issubclass(category, ParseWarning):
        typer.echo(f"warning: {message}", err=True)


DTYPES = ("float32", "float16", "bfloat16")
STRICT = Annotated[
    bool, typer.Option("--strict", help="Refuse text with a spatial phrase no predicate expresses, or no relation.")
]


def _version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"infsplign-scene {__version__}")
        raise typer.Exit(0)


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an internal error.")] = False,
) -> None:
    """Put objects where the prompt says."""


@app.command("parse")
def parse_command(
    text: Annotated[str, typer.Argument(help="The prompt, e.g. 'a cat left of a dog, a lamp above the cat'.")],
    backend: Annotated[str, typer.Option(help="Parser backend: auto, rules, spacy or llm.")] = "auto",
    llm_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible endpoint for --backend llm, e.g. http://127.0.0.1:8080/v1.")
    ] = None,
    llm_model: Annotated[str, typer.Option(help="Model name for --backend llm.")] = "default",
    indent: Annotated[int, typer.Option(help="JSON indentation.")] = 2,
    strict: STRICT = False,
) -> None:
    """Parse a prompt and print its scene graph as JSON."""
    options = {"base_url": llm_url, "model": llm_model} if backend == "llm" else {}
    try:
        graph = parse(text, backend=backend, strict=strict, **options)
    except InfsplignError as error:
        _fail(error)
    typer.echo(graph.model_dump_json(indent=indent, exclude_none=True))


@app.command("check")
def check_command(
    source: Annotated[str, typer.Argument(help="A prompt, or a scene-graph JSON file.")],
    policy: Annotated[str, typer.Option(help=f"Conflict policy: {', '.join(POLICIES)}.")] = "keep",
    backend: Annotated[str, typer.Option(help="Parser backend for text: auto, rules or spacy.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the analysis as JSON.")] = False,
    strict: STRICT = False,
) -> None:
    """Analyse a scene graph: contradictions, duplicates, implied and redundant relations.

    Exit status 0 when consistent, 1 when conflicts remain under the policy, 2 on bad input.
    """
    try:
        analysis = analyze(load_scene(source, backend=backend, strict=strict), policy=policy)  # type: ignore[arg-type]
    except InfsplignError as error:
        _fail(error)
    typer.echo(json.dumps(analysis.to_dict(), indent=2) if as_json else str(analysis))
    raise typer.Exit(0 if analysis.consistent else 1)


@app.command("compose")
def compose_command(
    source: Annotated[str, typer.Argument(help="A prompt, or a scene-graph JSON file.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the PNG image.")] = Path("out.png"),
    model: Annotated[
        str | None,
        typer.Option(
            help="An embedded model's name (nouns, shapes), a Stable Diffusion folder, or a hub id when online; "
            "default: the default embedded model."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    steps: Annotated[int | None, typer.Option(help="Denoising steps (default per model family).")] = None,
    guidance_scale: Annotated[float | None, typer.Option(help="Classifier-free guidance scale.")] = None,
    negative_prompt: Annotated[str | None, typer.Option(help="What the image should not show.")] = None,
    height: Annotated[int | None, typer.Option(help="Image height in pixels (default: the model's).")] = None,
    width: Annotated[int | None, typer.Option(help="Image width in pixels (default: the model's).")] = None,
    eta: Annotated[float | None, typer.Option(help="InfSplign gradient weight; 0 turns guidance off.")] = None,
    ddim_eta: Annotated[
        float | None,
        typer.Option(help="DDIM sampler noise, 0 (deterministic) to 1 (DDPM-like); default per model family."),
    ] = None,
    prompt_style: Annotated[
        str | None,
        typer.Option(
            help="'as_written' encodes the prompt; 'objects' encodes one naming the objects only (the "
            "embedded models' default: they never learned relation words). Relations are guided either way."
        ),
    ] = None,
    policy: Annotated[str, typer.Option(help=f"Conflict policy: {', '.join(POLICIES)}.")] = "keep",
    device: Annotated[str, typer.Option(help="torch device, e.g. cpu or cuda.")] = "cpu",
    cuda_graph: Annotated[
        bool,
        typer.Option(
            help="On cuda: record the guided step once as a CUDA graph and replay it at every guided step "
            "(measure_first off); see docs/performance.md."
        ),
    ] = False,
    cfg_forward: Annotated[
        str | None,
        typer.Option(
            help="How a guided step runs the two classifier-free-guidance halves: concurrent (side by side in "
            "two threads on CPU; the split step on a GPU), split (one after the other) or joint (one batch). "
            "Default: the model family's; docs/performance.md compares them.",
        ),
    ] = None,
    upscale: Annotated[
        int, typer.Option(min=1, max=32, help="Enlarge the written image N times (nearest), for viewing.")
    ] = 1,
    trace_path: Annotated[
        Path | None, typer.Option("--trace", help="Write the settings and the per-step trace as JSON.")
    ] = None,
    plot: Annotated[
        Path | None, typer.Option(help="Write attention.png and trace.png (matplotlib) into this folder.")
    ] = None,
    dtype: Annotated[
        str, typer.Option(help="Weights' precision: float32, float16 or bfloat16 (the loss stays float32).")
    ] = "float32",
    offload: Annotated[
        bool, typer.Option("--offload", help="Keep the model in CPU memory, each part on the GPU while it runs.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar and no report; errors only.")] = False,
    strict: STRICT = False,
) -> None:
    """Generate an image whose objects follow the prompt's spatial relations.

    The PNG carries the prompt, seed, model and settings in its text chunks. The embedded models
    draw small images (nouns 64x64, shapes 32x32): --upscale enlarges the file for viewing."""
    from .guidance import ScenePipeline, compose
    from .runtime import check_device

    try:
        check_device(device)
        if dtype not in DTYPES:
            raise InfsplignError(f"--dtype takes {', '.join(DTYPES)}, got {dtype!r}")
        scene = load_scene(source, strict=strict)
        import torch

        scene_pipe = ScenePipeline.from_pretrained(model, torch_dtype=getattr(torch, dtype))
        if offload:
            if not device.startswith("cuda"):
                raise InfsplignError("--offload moves the model's parts to the GPU when used: it needs --device cuda")
            scene_pipe.pipe.enable_model_cpu_offload(device=device)
        else:
            scene_pipe.to(device)
        updates = {"policy": policy} | ({"eta": eta} if eta is not None else {})
        if cuda_graph:  # a step that measures first runs eagerly: on a GPU it saves nothing anyway
            updates |= {"cuda_graph": True, "measure_first": False}
        if cfg_forward is not None:
            updates |= {"cfg_forward": cfg_forward}
        config = scene_pipe.config.updated(**updates)
        result = compose(
            scene,
            pipe=scene_pipe,
            seed=seed,
            num_inference_steps=steps,
            guidance_scale=guidance_scale,
            ddim_eta=ddim_eta,
            prompt_style=prompt_style,
            negative_prompt=negative_prompt,
            height=height,
            width=width,
            config=config,
            record_maps=plot is not None,
            progress=not quiet,
        )
    except InfsplignError as error:  # bad input, said plainly
        _fail(error)
    output.parent.mkdir(parents=True, exist_ok=True)
    result.save(output, upscale=upscale)
    if trace_path is not None:
        trace_path.write_text(json.dumps({"metadata": result.metadata(), "steps": result.trace}))
    if plot is not None and result.maps:
        plot.mkdir(parents=True, exist_ok=True)
        result.plot_attention(path=plot / "attention.png")
        result.plot_trace(path=plot / "trace.png")
    if quiet:
        return
    satisfied = result.final_satisfied()
    for relation, ok in zip(result.objective.relations[0], satisfied[0] if satisfied else [], strict=False):
        state = "uncertain" if ok is None else ("satisfied" if ok else "violated ")
        typer.echo(f"{state}  {relation.subject} {relation.predicate} {relation.object}")
    typer.echo(f"wrote {output} ({result.seconds:.1f} s)")


register_lab_commands(app, _fail)


@app.command("schema")
def schema_command() -> None:
    """Print the JSON schema of the scene-graph format."""
    typer.echo(json.dumps(SceneGraph.model_json_schema(), indent=2))


def main(argv: list[str] | None = None) -> int:
    """Run the command line; every exception that is not bad input becomes exit status 3."""
    arguments = sys.argv[1:] if argv is None else argv
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning if "--debug" not in arguments else warnings.showwarning
            status = app(args=arguments, prog_name="infsplign-scene", standalone_mode=False)
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else 0
    except typer.Exit as done:
        return done.exit_code
    except typer.TyperException as error:  # usage errors: unknown option or command, missing argument
        error.show()
        return BAD_INPUT
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 130
    except InfsplignError as error:
        typer.echo(f"error: {error}", err=True)
        return BAD_INPUT
    except Exception as error:  # noqa: BLE001 - the contract: one line, exit 3
        if "--debug" in arguments:
            raise
        typer.echo(f"internal error: {type(error).__name__}: {error}; rerun with --debug for the traceback", err=True)
        return INTERNAL_ERROR
    return status if isinstance(status, int) else 0


if __name__ == "__main__":
    sys.exit(main())
