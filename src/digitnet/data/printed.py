"""Printed digits to train on: 0-9 rendered from the typefaces matplotlib ships, prepared as MNIST's.

MNIST holds only handwriting, so a network trained on it alone reads a serif 1 as a 2 and a round
printed 6 as a 0. The `print` augmentation (data/augment.py) swaps a share of every training batch
for these glyphs, which the batch's affine and stroke-thickness changes then vary.

The fonts come with matplotlib (DejaVu Sans, Serif and Mono; STIX General, a Times-like serif;
Computer Modern), so every installation trains on the same ones; fonts installed on the system are
never read here, which keeps them free for measuring print the network has not seen
(benchmarks/real_world_set.py). Each glyph is rendered black on white and passed through
imageprep.prepare, the same preparation a user's scan gets.
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


@lru_cache(maxsize=1)
def glyph_bank() -> GlyphBank:
    """Every digit in every training font, as MNIST-format fields (rendered once per process)."""
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
    stacked = np.stack(pixels)
    labels = np.tile(np.arange(CLASSES, dtype=np.int64), len(fonts))
    return GlyphBank(stacked, labels, tuple(p.name for p in fonts), hashlib.sha256(stacked.tobytes()).hexdigest())
