"""How long preparing an image's digits takes (imageprep.prepare_digits), on ordinary and pathological pages.

    python benchmarks/prepare_speed.py --data-dir DIR/mnist-t10k [--rounds 3] [--baseline-src DIR]

Pages (greyscale, 512 pixels wide, each prepared as the CLI and the server prepare an image):
  digits      four held-out MNIST digits, 100 pixels tall, on a 512 x 400 white page
  dark grid   the same under a dark grid every 25 pixels
  text        a 512 x 512 page of printed text (hundreds of small pieces of ink)
  dashes      a 512 x 512 page of 500 short dashes (hundreds of straight lines, nothing else)
  thin pen    one MNIST digit 440 pixels tall drawn with a 3-pixel pen (thickened by a large disk)
  photo       a JPEG of four digits on grey paper (benchmarks/real_world_set.py's photo), read from its bytes
  phone       a 4032 x 3024 JPEG, the same four digits 150 pixels tall in it, read from its bytes
  drawing     what the draw page sends: a 280 x 280 RGBA PNG of a digit drawn black on white, from its bytes
Each round runs every tree in a process of its own, one after the other (the fastest of 3 calls a page,
with nothing remembered from the call before);
with --baseline-src (another digitnet tree's src folder, e.g. from `git archive COMMIT src`) the rounds
alternate between the two, and the ratios baseline / this tree are printed (above 1: this tree faster).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

PAGES = ("digits", "dark grid", "text", "dashes", "thin pen", "photo", "phone", "drawing")


def pages(data_dir: str) -> dict[str, np.ndarray]:
    import matplotlib
    from PIL import Image, ImageDraw, ImageFont
    from scipy import ndimage

    from digitnet.data import load_dataset

    digits = load_dataset("mnist-10k", data_dir, progress=False).x_test
    page = np.full((400, 512), 255, np.uint8)
    for k in range(4):
        big = np.asarray(Image.fromarray(255 - digits[k]).resize((100, 100), Image.Resampling.BICUBIC))
        np.minimum(page[150:250, 40 + 110 * k : 140 + 110 * k], big, out=page[150:250, 40 + 110 * k : 140 + 110 * k])
    grid = page.copy()
    grid[::25, :] = grid[:, ::25] = 60
    font = ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), 14)
    text = Image.new("L", (512, 512), 255)
    for y in range(0, 512, 16):
        ImageDraw.Draw(text).text((2, y), "TEETH 7777 === ---- ZZZZ EEEE FFFF 4444 TTTT ____ 2222", fill=0, font=font)
    dashes = np.full((512, 512), 255, np.uint8)
    for y in range(10, 500, 12):
        for x in range(5, 500, 40):
            dashes[y : y + 3, x : x + 30] = 0
    shape = np.asarray(Image.fromarray(digits[1]).resize((440, 440), Image.Resampling.BICUBIC)) > 128
    skeleton = ndimage.binary_erosion(shape, iterations=12)
    thin = np.where(ndimage.binary_dilation(skeleton, iterations=1), 0, 255).astype(np.uint8)
    return {"digits": page, "dark grid": grid, "text": np.asarray(text), "dashes": dashes,
            "thin pen": np.pad(thin, 36, constant_values=255), **photos(digits[:4]), "drawing": drawing(digits[5])}


def drawing(digit: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(255 - digit).resize((280, 280), Image.Resampling.BICUBIC).convert("RGBA").save(buffer, "PNG")
    return buffer.getvalue()


def photos(digits: np.ndarray) -> dict[str, bytes]:
    """JPEG files of a number photographed on grey paper: filling the image, and small in a phone's."""
    import io

    from real_world_set import _ink_on_paper, _number_row

    rng = np.random.default_rng(0)
    files = {}
    for name, side, canvas in (("photo", 100, None), ("phone", 150, (3024, 4032))):
        ink = np.pad(_number_row(rng, list(digits), side), side // 2)
        if canvas is not None:
            page = np.zeros(canvas, np.float32)
            page[1200 : 1200 + ink.shape[0], 1500 : 1500 + ink.shape[1]] = ink
            ink = page
        buffer = io.BytesIO()
        _ink_on_paper(rng, ink).convert("RGB").save(buffer, "JPEG", quality=90)
        files[name] = buffer.getvalue()
    return files


def child(data_dir: str) -> None:
    """Time every page in this process (the digitnet on sys.path); print {page: seconds} as JSON."""
    from digitnet.imageprep import ImageError, prepare_digits, read_digits
    try:
        from digitnet.imageprep.measures import _band_width  # the strokes' widths, remembered within a call
    except ImportError:  # an older tree
        _band_width = None

    seconds = {}
    for name, image in pages(data_dir).items():
        best = float("inf")
        for _ in range(3):
            if _band_width is not None:
                _band_width.cache_clear()
            started = time.perf_counter()
            try:
                read_digits(image) if isinstance(image, bytes) else prepare_digits(image)
            except (ImageError, ValueError):  # an image with no digit is an answer too (older trees: ValueError)
                pass
            best = min(best, time.perf_counter() - started)
        seconds[name] = best
    print(json.dumps(seconds))


def run_tree(src: str, data_dir: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": src}
    out = subprocess.run([sys.executable, __file__, "--data-dir", data_dir, "--child"], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True, help="folder with MNIST's t10k files")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline-src", help="another digitnet tree's src folder, run beside")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.data_dir)
        return
    from train_speed import hardware

    print(hardware())
    trees = {"this tree": str(Path(__file__).resolve().parents[1] / "src")}
    if args.baseline_src:
        trees["baseline"] = str(Path(args.baseline_src).resolve())
    runs = {tree: [] for tree in trees}
    for _ in range(args.rounds):
        for tree, src in trees.items():
            runs[tree].append(run_tree(src, args.data_dir))
    print("| page | " + " | ".join(f"{tree} (ms)" for tree in trees) + (" | baseline / this tree |" if len(trees) > 1 else " |"))
    print("| --- | " + " | ".join("---:" for _ in trees) + (" | ---: |" if len(trees) > 1 else " |"))
    for page in PAGES:
        medians = {tree: statistics.median(r[page] for r in rounds) * 1e3 for tree, rounds in runs.items()}
        cells = " | ".join(f"{ms:.2f}" for ms in medians.values())
        ratio = f" | {medians['baseline'] / medians['this tree']:.2f} |" if len(trees) > 1 else " |"
        print(f"| {page} | {cells}{ratio}")


if __name__ == "__main__":
    main()
