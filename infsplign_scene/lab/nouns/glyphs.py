"""The noun classes and their glyphs, rendered from a colour emoji font.

The font is needed only to make data (training, the detector, tests of the generator); the
trained model draws without it. `classes.json` lists each class: its name, the emoji drawn, the
synonyms a user may type and whether it is a COCO class.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from ...errors import InfsplignError

CLASSES_FILE = Path(__file__).with_name("classes.json")
FONT_ENV = "INFSPLIGN_EMOJI_FONT"
FONT_PATHS = (
    "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",
    "/usr/share/fonts/noto/NotoColorEmoji.ttf",
    "/usr/share/fonts/google-noto-emoji/NotoColorEmoji.ttf",
)
# Noto Color Emoji is a bitmap font with one strike: Pillow renders it at this size only.
FONT_STRIKE = 109
IRREGULAR_PLURALS = {
    "person": "people",
    "man": "men",
    "woman": "women",
    "sheep": "sheep",
    "fish": "fish",
    "scissors": "scissors",
    "cactus": "cacti",
    "mouse": "mice",
}


@dataclass(frozen=True)
class NounClass:
    index: int
    name: str
    emoji: str
    synonyms: tuple[str, ...]
    coco: bool

    @property
    def names(self) -> tuple[str, ...]:
        """Every name a caption may use for this class: the class name first."""
        return (self.name, *self.synonyms)


def plural(name: str) -> str:
    """English plural of a (possibly multi-word) noun: the last word takes the ending."""
    *head, last = name.split()
    if last in IRREGULAR_PLURALS:
        last = IRREGULAR_PLURALS[last]
    elif last.endswith(("s", "x", "ch", "sh")):
        last += "es"
    elif last.endswith("y") and last[-2:-1] not in "aeiou":
        last = last[:-1] + "ies"
    else:
        last += "s"
    return " ".join([*head, last])


@cache
def noun_classes() -> tuple[NounClass, ...]:
    data = json.loads(CLASSES_FILE.read_text(encoding="utf-8"))
    return tuple(
        NounClass(i, c["name"], c["emoji"], tuple(c["synonyms"]), bool(c["coco"]))
        for i, c in enumerate(data["classes"])
    )


def font_description() -> str:
    return json.loads(CLASSES_FILE.read_text(encoding="utf-8"))["font"]


def find_font() -> Path:
    """The colour emoji font: $INFSPLIGN_EMOJI_FONT, else the usual system paths."""
    candidates = [os.environ[FONT_ENV]] if os.environ.get(FONT_ENV) else list(FONT_PATHS)
    for candidate in candidates:
        if Path(candidate).is_file():
            return Path(candidate)
    raise InfsplignError(
        "the noun model's data needs the Noto Color Emoji font (Debian: apt-get install fonts-noto-color-emoji), "
        f"or its path in ${FONT_ENV}; looked in: {', '.join(candidates)}"
    )


@cache
def glyph(emoji: str) -> np.ndarray:
    """The emoji at the font's strike size, cropped to its ink: float32 RGBA [h, w, 4] in 0-1."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(find_font()), FONT_STRIKE)
    canvas = Image.new("RGBA", (FONT_STRIKE + 60, FONT_STRIKE + 60), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((10, 10), emoji, font=font, embedded_color=True)
    box = canvas.getbbox()
    if box is None:
        raise InfsplignError(f"the font draws nothing for {emoji!r}")
    return np.asarray(canvas.crop(box), dtype=np.float32) / 255.0


@cache
def sized_glyph(emoji: str, extent: int) -> np.ndarray:
    """The glyph resized so that its longer side is `extent` pixels: float32 RGBA [h, w, 4]."""
    from PIL import Image

    full = glyph(emoji)
    height, width = full.shape[:2]
    scale = extent / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    image = Image.fromarray((full * 255).round().astype(np.uint8), "RGBA").resize(size, Image.LANCZOS)
    return np.asarray(image, dtype=np.float32) / 255.0
