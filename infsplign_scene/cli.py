"""The `infsplign-scene` command line."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from .analysis import POLICIES, analyze
from .errors import InfsplignError
from .parsing import load_scene, parse
from .scene import SceneGraph

app = typer.Typer(
    help="Put objects where the prompt says: parse spatial prompts into scene graphs, check them, "
    "and guide Stable Diffusion sampling with InfSplign.",
    no_args_is_help=True,
    add_completion=False,
)


def _fail(error: Exception) -> None:
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(2)


@app.command("parse")
def parse_command(
    text: Annotated[str, typer.Argument(help="The prompt, e.g. 'a cat left of a dog, a lamp above the cat'.")],
    backend: Annotated[str, typer.Option(help="Parser backend: auto or rules.")] = "auto",
    indent: Annotated[int, typer.Option(help="JSON indentation.")] = 2,
) -> None:
    """Parse a prompt and print its scene graph as JSON."""
    try:
        graph = parse(text, backend=backend)
    except InfsplignError as error:
        _fail(error)
    typer.echo(graph.model_dump_json(indent=indent, exclude_none=True))


@app.command("check")
def check_command(
    source: Annotated[str, typer.Argument(help="A prompt, or a scene-graph JSON file.")],
    policy: Annotated[str, typer.Option(help=f"Conflict policy: {', '.join(POLICIES)}.")] = "keep",
    as_json: Annotated[bool, typer.Option("--json", help="Print the analysis as JSON.")] = False,
) -> None:
    """Analyse a scene graph: contradictions, duplicates, implied and redundant relations.

    Exit status 0 when consistent, 1 when conflicts remain under the policy, 2 on bad input.
    """
    try:
        analysis = analyze(load_scene(source), policy=policy)  # type: ignore[arg-type]
    except InfsplignError as error:
        _fail(error)
    typer.echo(json.dumps(analysis.to_dict(), indent=2) if as_json else str(analysis))
    raise typer.Exit(0 if analysis.consistent else 1)


@app.command("schema")
def schema_command() -> None:
    """Print the JSON schema of the scene-graph format."""
    typer.echo(json.dumps(SceneGraph.model_json_schema(), indent=2))


def main() -> None:
    app(prog_name="infsplign-scene")


if __name__ == "__main__":
    sys.exit(main())
