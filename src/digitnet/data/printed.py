"""Printed digits to train on: 0-9 rendered from the typefaces matplotlib ships, prepared as MNIST's.

MNIST holds only handwriting, so a network trained on it alone reads a serif 1 as a 2 and a round
printed 6 as a 0. The `print` augmentation (data/augment.py) swaps a share of every training batch
for these glyphs, which the batch's affine and stroke-thickness changes then vary.

The fonts come with matplotlib (DejaVu Sans, Serif and Mono; STIX General, a Times-like serif;
Computer Modern), so every installation trains on the same ones; fonts installed on the system are
never read here, which keeps them free for measuring print the network has not seen
(benchmarks/real_world_set.py). Beside them, digits as displays and simple printers draw them, which
no such font does: seven segments (a calculator, a meter, a clock; two styles, the second slanted and
bold with the other common 6, 7 and 9) and a 5 x 7 grid of dots (a receipt, a ticket; a character
LCD's zero is slashed). Each glyph is rendered black on white and passed through imageprep.prepare,
the same preparation a user's scan gets (dots joined into strokes as a user's print's are).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from digitnet.errors import DataError
from digitnet.imageprep import ImageError, prepare
from digitnet.settings import CLASSES

TRAINING_FONT_PATTERNS = ("DejaVuSans.ttf", "DejaVuSans-*.ttf", "DejaVuSansMono*.ttf", "DejaVuSerif.ttf",
                          "DejaVuSerif-*.ttf", "STIXGeneral*.ttf", "cmr10.ttf", "cmb10.ttf", "cmti10.ttf",
                          "cmss10.ttf", "cmtt10.ttf")
TRAINED_FAMILIES = ("DejaVu", "STIX", "cm")  # the file-name prefixes of the families above
GLYPH_SIZE = 64  # points, rendered at one pixel per point: far above the 20x20 box they are fitted into
# the segments lit for each digit: a top, b top right, c bottom right, d bottom, e bottom left, f top left, g middle
SEGMENTS = ("abcdef", "bc", "abdeg", "abcdg", "bcfg", "acdfg", "acdefg", "abc", "abcdefg", "abcdfg")
OTHER_SEGMENTS = {6: "cdefg", 7: "abcf", 9: "abcfg"}  # a 6 without its top, a 7 with a hook, a 9 without its foot
DOT_ROWS = ("01110 10001 10001 10001 10001 10001 01110", "00100 01100 00100 00100 00100 00100 01110",
            "01110 10001 00001 00010 00100 01000 11111", "11111 00010 00100 00010 00001 10001 01110",
            "00010 00110 01010 10010 11111 00010 00010", "11111 10000 11110 00001 00001 10001 01110",
            "00110 01000 10000 11110 10001 10001 01110", "11111 00001 00010 00100 01000 01000 01000",
            "01110 10001 10001 01110 10001 10001 01110", "01110 10001 10001 01111 00001 00010 01100")
SLASHED_ZERO = "01110 10001 10011 10101 11001 10001 01110"
DISPLAY_STYLES = ("seven-segment", "seven-segment-slanted-bold", "dots-5x7", "dots-5x7-slashed-zero")


@dataclass(frozen=True)
class GlyphBank:
    pixels: np.ndarray  # uint8 (K, 28, 28), white ink on black, MNIST's format
    labels: np.ndarray  # int64 (K,)
    fonts: tuple[str, ...]
    sha256: str  # of the pixels: the same fonts, Pillow and FreeType give the same bank

    def describe(self) -> dict:
        """What a run's config.json records of the glyphs it trained on."""
        return {"fonts": list(self.fonts), "glyphs": len(self.labels), "sha256": self.sha256}


def training_fonts() -> list[Path]:
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    found = sorted({path for pattern in TRAINING_FONT_PATTERNS for path in folder.glob(pattern)})
    if not found:
        raise DataError(f"{folder}: none of matplotlib's fonts found to render printed digits; reinstall matplotlib "
                        "or train without print (--augment affine+thickness)")
    return found


def _render(font, digit: int) -> np.ndarray:
    from PIL import Image, ImageDraw

    left, top, right, bottom = font.getbbox(str(digit))
    margin = GLYPH_SIZE // 4
    canvas = Image.new("L", (right - left + 2 * margin, bottom - top + 2 * margin), 255)
    ImageDraw.Draw(canvas).text((margin - left, margin - top), str(digit), fill=0, font=font)
    return prepare(canvas).pixels


def seven_segment_image(text: str, height: int, bold: bool = False):
    """text's digits in seven segments, black on white, height pixels tall; bold: thicker segments, slanted,
    with the other common 6, 7 and 9."""
    from PIL import Image, ImageDraw

    width = height // 2
    thick, gap, slant = (0.16, 0.03, 0.15) if bold else (0.1, 0.02, 0.0)
    thick, gap, half, margin, advance = thick * height, gap * height, height / 2, height // 4, width + height // 3
    boxes = {"a": (gap, 0, width - gap, thick), "d": (gap, height - thick, width - gap, height),
             "g": (gap, half - thick / 2, width - gap, half + thick / 2),
             "f": (0, gap, thick, half - gap), "b": (width - thick, gap, width, half - gap),
             "e": (0, half + gap, thick, height - gap), "c": (width - thick, half + gap, width, height - gap)}
    canvas = Image.new("L", (len(text) * advance + 2 * margin + int(slant * height), height + 2 * margin), 255)
    draw = ImageDraw.Draw(canvas)
    for k, char in enumerate(text):
        digit, left = int(char), margin + k * advance
        for segment in OTHER_SEGMENTS.get(digit, SEGMENTS[digit]) if bold else SEGMENTS[digit]:
            x0, y0, x1, y1 = boxes[segment]
            corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
            draw.polygon([(left + x + slant * (height - y), margin + y) for x, y in corners], fill=0)
    return canvas


def dot_matrix_image(text: str, pitch: float, dot: float = 0.7, slashed_zero: bool = False):
    """text's digits in 5 x 7 dots, black on white, pitch pixels apart, each dot `dot` pitches wide, a
    blank column between digits; slashed_zero: a character LCD's 0."""
    from PIL import Image, ImageDraw

    margin, radius = round(2 * pitch), dot * pitch / 2
    canvas = Image.new("L", (2 * margin + round(6 * pitch * len(text) - pitch), 2 * margin + round(7 * pitch)), 255)
    draw = ImageDraw.Draw(canvas)
    for k, char in enumerate(text):
        rows = SLASHED_ZERO if slashed_zero and char == "0" else DOT_ROWS[int(char)]
        for row, bits in enumerate(rows.split()):
            for col, bit in enumerate(bits):
                if bit == "1":
                    x, y = margin + (6 * k + col + 0.5) * pitch, margin + (row + 0.5) * pitch
                    draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=0)
    return canvas


def display_glyphs() -> list[np.ndarray]:
    """0-9 in each of DISPLAY_STYLES, style by style, prepared as a user's image is."""
    draw = {"seven-segment": lambda d: seven_segment_image(d, GLYPH_SIZE),
            "seven-segment-slanted-bold": lambda d: seven_segment_image(d, GLYPH_SIZE, bold=True),
            "dots-5x7": lambda d: dot_matrix_image(d, GLYPH_SIZE / 7),
            "dots-5x7-slashed-zero": lambda d: dot_matrix_image(d, GLYPH_SIZE / 7, slashed_zero=True)}
    return [prepare(draw[style](str(digit))).pixels for style in DISPLAY_STYLES for digit in range(CLASSES)]


@lru_cache(maxsize=1)
def glyph_bank() -> GlyphBank:
    """Every digit in every training font and display style, as MNIST-format fields (rendered once per
    process)."""
    from PIL import ImageFont

    fonts, pixels = training_fonts(), []
    for path in fonts:
        try:
            # from bytes: given a path, Pillow would quietly load a system font of the same name instead
            face = ImageFont.truetype(io.BytesIO(path.read_bytes()), GLYPH_SIZE)
            pixels += [_render(face, digit) for digit in range(CLASSES)]
        except (OSError, ImageError) as exc:
            raise DataError(f"{path}: cannot render printed digits from this font ({exc}); reinstall matplotlib "
                            "or train without print (--augment affine+thickness)") from None
    pixels += display_glyphs()
    stacked = np.stack(pixels)
    labels = np.tile(np.arange(CLASSES, dtype=np.int64), len(fonts) + len(DISPLAY_STYLES))
    names = tuple(p.name for p in fonts) + DISPLAY_STYLES
    return GlyphBank(stacked, labels, names, hashlib.sha256(stacked.tobytes()).hexdigest())
