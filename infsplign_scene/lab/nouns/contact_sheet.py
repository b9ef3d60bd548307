"""A labelled contact sheet of a generated run: what the noun detector reads in each image.

Each prompt gets one image per arm (same seed), side by side, enlarged, with every detection's box and
class drawn (green: a class the prompt names; red: one it does not) and the prompt below, so a
reader can check the detector against their own eyes.

    python -m infsplign_scene.lab.nouns.contact_sheet runs/nouns/nouns_pairs --prompts 12 --out sheet.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw

from ...scene import SceneGraph
from ..generate import manifest_rows
from .detector import class_of, detect
from .glyphs import noun_classes

SCALE = 4
CAPTION = 28  # pixels under each row for the prompt


def contact_sheet(
    run: Path, prompts: int = 12, arms: tuple[str, ...] = ("unguided", "guided"), per_row: int = 3
) -> Image.Image:
    """The first `prompts` images (prompt and k) of a run, `per_row` of them per row, one image per
    arm (the same seed)."""
    generated = [r for r in manifest_rows(run) if r["refused"] is None and r["arm"] in arms]
    by_key = {(r["id"], r["k"], r["arm"]): r for r in generated}
    ids = list(dict.fromkeys((r["id"], r["k"]) for r in generated))[:prompts]
    rows = -(-len(ids) // per_row)
    names = [c.name for c in noun_classes()]
    cell = None
    sheet = None
    for n, key in enumerate(ids):
        left, top = (n % per_row) * len(arms), n // per_row
        graph = SceneGraph.model_validate(by_key[(*key, arms[0])]["graph"])
        wanted = {class_of(o) for o in graph.objects}
        for x, arm in enumerate(arms):
            with Image.open(run / by_key[(*key, arm)]["image"]) as opened:
                image = opened.convert("RGB")
            if sheet is None:
                cell = image.width * SCALE
                sheet = Image.new("RGB", (cell * len(arms) * min(per_row, len(ids)), (cell + CAPTION) * rows), "white")
            big = image.resize((cell, cell), Image.NEAREST)
            draw = ImageDraw.Draw(big)
            for found in detect(image):
                box = [c * SCALE for c in found.box]
                colour = (0, 200, 0) if found.noun in wanted else (230, 0, 0)
                draw.rectangle(box, outline=colour, width=2)
                draw.text((box[0] + 2, box[1] + 1), names[found.noun], fill=colour)
            sheet.paste(big, ((left + x) * cell, top * (cell + CAPTION)))
            ImageDraw.Draw(sheet).text(((left + x) * cell + 3, top * (cell + CAPTION) + cell + 2), arm, fill="black")
        ImageDraw.Draw(sheet).text(
            (left * cell + 3, top * (cell + CAPTION) + cell + 14), graph.prompt or "", fill="black"
        )
    if sheet is None:
        raise SystemExit(f"{run} holds no generated images of the arms {', '.join(arms)}")
    return sheet


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a folder written by `infsplign-scene generate`")
    parser.add_argument("--prompts", type=int, default=12)
    parser.add_argument("--per-row", type=int, default=3, help="prompts per row")
    parser.add_argument("--arms", default="unguided,guided", help="comma-separated arms, one column each")
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    args = parser.parse_args(argv)
    arms = tuple(a for a in args.arms.split(",") if a)
    contact_sheet(args.run, args.prompts, arms, args.per_row).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
