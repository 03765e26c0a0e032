"""How a run reads printed numbers with symbols beside or between their digits: a date's slash, a
phone number's dash, brackets and plus, a price's dollar or euro, a percentage, a house number's
number sign, a time's colon, a decimal point, a thousands' comma. The right reading is the digits alone.

    python benchmarks/symbol_probe.py RUN [--count 40] [--seed 5]

Each form: count numbers, each printed in one of real_world_set.fonts() (drawn from the seed) at a
size of 30-89, dark grey on light grey. Prints the share read right and the first misreadings.
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image, ImageDraw, ImageFont

import real_world_set
from digitnet.errors import DigitnetError
from digitnet.predict import Predictor

FORMS = {
    "21/10": lambda r: f"{r.integers(1, 32)}/{r.integers(1, 13):02d}",
    "123-4567": lambda r: f"{r.integers(10, 999)}-{r.integers(10, 9999)}",
    "$45": lambda r: f"${r.integers(1, 999)}",
    "45%": lambda r: f"{r.integers(1, 100)}%",
    "+49": lambda r: f"+{r.integers(10, 999)}",
    "(123)": lambda r: f"({r.integers(1, 999)})",
    "#12": lambda r: f"#{r.integers(1, 999)}",
    "45€": lambda r: f"{r.integers(1, 99)}€",
    "12:30": lambda r: f"{r.integers(0, 24)}:{r.integers(0, 60):02d}",
    "4.50": lambda r: f"{r.integers(0, 99)}.{r.integers(0, 99):02d}",
    "1,024": lambda r: f"{r.integers(1, 99)},{r.integers(0, 999):03d}",
}


def printed(rng, fonts, text: str) -> Image.Image:
    font = fonts[int(rng.integers(len(fonts)))]
    size = int(rng.integers(30, 90))
    face = ImageFont.truetype(str(font), size)
    left, top, right, bottom = face.getbbox(text)
    image = Image.new("L", (right - left + size, bottom - top + size), int(rng.integers(215, 256)))
    ImageDraw.Draw(image).text((size // 2 - left, size // 2 - top), text, fill=int(rng.integers(0, 60)), font=face)
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    predictor, fonts = Predictor(args.run), real_world_set.fonts()
    print("| form | read right | first misreadings |\n| --- | ---: | --- |")
    for name, make in FORMS.items():
        rng = np.random.default_rng(args.seed)
        wrong = []
        for _ in range(args.count):
            text = make(rng)
            try:
                got = predictor.read_image(printed(rng, fonts, text), text).digits
            except DigitnetError:
                got = "(no digit)"
            if got != "".join(c for c in text if c.isdigit()):
                wrong.append(f"{text} -> {got}")
        right = 100 * (args.count - len(wrong)) / args.count
        print(f"| `{name}` | {right:.1f}% | {', '.join(wrong[:4])} |", flush=True)


if __name__ == "__main__":
    main()
