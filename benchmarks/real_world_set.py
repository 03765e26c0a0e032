"""A real-world test set of our own: printed digits, synthetic photos, pen strokes, whole numbers;
print in fonts no recipe trains on: single digits, and numbers (clean or photographed); numbers
underlined or on ruled paper, and digits written in a form's boxes; numbers photographed under glare,
across a shadow's edge or in faint pencil, numbers small in a phone's photo of a page, and numbers on a
sheet photographed lying on a table (white, grey or dark), turned a few degrees, numbers on a small
card on a grey or dark desk, turned up to 30 degrees; numbers in small print (a screenshot), digits
drawn with a broad white brush on a black canvas, and numbers circled or framed; numbers as displays
and simple printers show them: seven segments (a meter, a clock lit on black) and 5 x 7 dots (a receipt).

    python benchmarks/real_world_set.py OUT --data-dir DIR/mnist-t10k [--seed 0]

writes OUT/<category>/<label>_<n>.<ext>, the label being the digits the image shows. Handwriting
comes from the last 2,000 MNIST test digits (mnist-10k's test split, never trained on); printed
digits from the fonts installed here (matplotlib's DejaVu family, and any Debian TrueType fonts).
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from scipy import ndimage

CATEGORIES = ("printed", "photos", "pens", "numbers", "unseen-fonts", "printed-numbers", "ruled", "boxed", "lit",
              "phone", "table", "turned", "turned-forms", "cards", "small-print", "brush", "framed", "displays")
TABLES = ((225, 250), (100, 160), (30, 80))  # grey levels of a white desk, a grey one, dark wood
TURNS = (12.0, 25.0)  # degrees the camera is turned by in `turned`, either way
FORM_TURNS = (1.0, 6.0)  # ... and in `turned-forms`
CARD_TURNS = (0.0, 30.0)  # ... and in `cards`
SYSTEM_FONTS = Path("/usr/share/fonts/truetype")


def fonts() -> list[Path]:
    import matplotlib

    found = sorted((Path(matplotlib.get_data_path()) / "fonts" / "ttf").glob("DejaVu*.ttf"))
    found += sorted(SYSTEM_FONTS.rglob("*.ttf"))
    return [f for f in found if "Display" not in f.name]  # DejaVu's Display face has no digits


def unseen_fonts() -> list[Path]:
    """System fonts of families the `print` augmentation never trains on (here: Liberation)."""
    from digitnet.data.printed import TRAINED_FAMILIES

    return [f for f in sorted(SYSTEM_FONTS.rglob("*.ttf")) if not f.name.startswith(TRAINED_FAMILIES)]


def printed(rng, font: Path, digit: int) -> Image.Image:
    size = int(rng.integers(40, 140))
    canvas = Image.new("L", (size * 2, size * 2), int(rng.integers(225, 256)))
    face = ImageFont.truetype(str(font), size)
    left, top = rng.integers(0, size // 2, 2)
    ImageDraw.Draw(canvas).text((int(left), int(top)), str(digit), fill=int(rng.integers(0, 60)), font=face)
    return canvas


def _paper(rng, shape) -> np.ndarray:
    """Grey paper: a base level, a light gradient, a soft shadow, grain."""
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w] / max(h, w)
    angle = rng.uniform(0, 2 * np.pi)
    paper = rng.uniform(150, 225) + rng.uniform(20, 60) * (np.cos(angle) * xs + np.sin(angle) * ys - 0.5)
    edge = rng.uniform(0.2, 0.8)
    shadow = 1 / (1 + np.exp(-(xs * np.cos(angle + 1) + ys * np.sin(angle + 1) - edge) * 25))
    paper -= rng.uniform(15, 45) * shadow
    paper += ndimage.gaussian_filter(rng.normal(0, rng.uniform(6, 14), shape), 1.0)
    return paper


def _ink_on_paper(rng, ink: np.ndarray, light=None) -> Image.Image:
    """ink in 0..1 (1 = ink) -> a photo: paper, darkness, blur, perspective tilt, JPEG; light(rng, photo),
    when given, changes the lit photo before the lens's blur."""
    paper = _paper(rng, ink.shape)
    darkness = rng.uniform(0.55, 0.85)
    photo = paper * (1 - darkness * ink)
    if light is not None:
        photo = light(rng, photo, paper, ink)
    photo = ndimage.gaussian_filter(photo, rng.uniform(0.5, 1.5))
    image = Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8))
    w, h = image.size
    tilt = rng.uniform(-0.08, 0.08, 8) * np.array([1, 1, w, 1, 1, h, 1 / w, 1 / h]) * 0.5
    coefficients = np.array([1, 0, 0, 0, 1, 0, 0, 0]) + tilt
    image = image.transform(image.size, Image.Transform.PERSPECTIVE, tuple(coefficients),
                            Image.Resampling.BICUBIC, fillcolor=int(np.median(photo)))
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=int(rng.integers(50, 90)))
    return Image.open(io.BytesIO(buffer.getvalue()))


def _upscaled(digit28: np.ndarray, side: int) -> np.ndarray:
    big = Image.fromarray(digit28).resize((side, side), Image.Resampling.BICUBIC)
    return np.asarray(big, dtype=np.float32) / 255.0


def photo(rng, digit28: np.ndarray) -> Image.Image:
    side = int(rng.integers(90, 200))
    ink = np.pad(_upscaled(digit28, side), side // 3)
    return _ink_on_paper(rng, ink)


def pen(rng, digit28: np.ndarray) -> Image.Image:
    """The digit's shape written with a thin, a medium or a thick pen, black on white."""
    side = 224
    shape = _upscaled(digit28, side) > 0.5
    skeleton = ndimage.binary_erosion(shape, iterations=6) | (ndimage.distance_transform_edt(shape) > 0) & \
        (ndimage.distance_transform_edt(shape) >= ndimage.maximum_filter(ndimage.distance_transform_edt(shape), 5))
    radius = int(rng.choice([1, 3, 6, 10]))
    stroke = ndimage.binary_dilation(skeleton, structure=ndimage.generate_binary_structure(2, 1), iterations=radius)
    ink = ndimage.gaussian_filter(stroke.astype(np.float32), 0.8)
    return Image.fromarray((255 * (1 - np.pad(ink, 40))).astype(np.uint8)).filter(ImageFilter.SMOOTH)


def number(rng, digits28: list[np.ndarray]) -> Image.Image:
    """Digits side by side, gaps from touching to wide, on clean paper or as a photo."""
    side = int(rng.integers(60, 120))
    row = np.pad(_number_row(rng, digits28, side), side // 3)
    return _clean_or_photo(rng, row)


def _clean_or_photo(rng, ink: np.ndarray) -> Image.Image:
    """ink in 0..1 (1 = ink) black on white, or photographed on grey paper: an even chance."""
    if rng.random() < 0.5:
        return _ink_on_paper(rng, ink)
    return Image.fromarray((255 * (1 - ink)).astype(np.uint8))


def _number_row(rng, digits28: list[np.ndarray], side: int) -> np.ndarray:
    """The digits' ink side by side, side pixels tall, gaps from touching to wide, half a side of margin
    left and right."""
    pieces = []
    for d in digits28:
        ink = _upscaled(d, side)
        cols = np.flatnonzero(ink.max(axis=0) > 0.1)
        pieces.append(ink[:, cols[0] : cols[-1] + 1])
    gaps = rng.integers(-side // 20, side // 3, len(pieces))
    width = sum(p.shape[1] for p in pieces) + int(gaps.clip(0).sum()) + side
    row = np.zeros((side, width), dtype=np.float32)
    x = side // 2
    for piece, gap in zip(pieces, gaps):
        x = max(0, x + min(0, int(gap)))
        row[:, x : x + piece.shape[1]] = np.maximum(row[:, x : x + piece.shape[1]], piece)
        x += piece.shape[1] + max(0, int(gap))
    return row


def ruled(rng, digits28: list[np.ndarray]) -> Image.Image:
    """A handwritten number with straight lines that are not digits: underlined (apart from the digits
    or touching them), underlined twice, or written on ruled notebook paper whose lines run across the
    whole image; clean or photographed."""
    return _clean_or_photo(rng, _ruled_ink(rng, digits28))


def _ruled_ink(rng, digits28: list[np.ndarray]) -> np.ndarray:
    """ruled's ink, in 0..1 (1 = ink)."""
    side = int(rng.integers(60, 120))
    row = _number_row(rng, digits28, side)
    ink = np.pad(row, side // 2)
    rows = np.flatnonzero(row.max(axis=1) > 0.1) + side // 2
    cols = np.flatnonzero(row.max(axis=0) > 0.1) + side // 2
    thickness = int(rng.integers(1, max(2, side // 25) + 1))
    kind = rng.choice(["underline", "touching", "double", "notebook"])
    if kind == "notebook":
        spacing = int(rows[-1] - rows[0] + rng.integers(side // 8, side // 3))
        for y in range(int(rows[-1]) + 1 - spacing, ink.shape[0], spacing):
            if y >= 0:
                ink[y : y + thickness] = np.maximum(ink[y : y + thickness], rng.uniform(0.5, 1.0))
        return ink
    left, right = cols[0] - int(rng.integers(0, side // 3)), cols[-1] + int(rng.integers(0, side // 3))
    y = int(rows[-1]) + (1 if kind == "touching" else int(rng.integers(side // 20 + 2, side // 4)))
    ink[y : y + thickness, left:right] = 1.0
    if kind == "double":
        y += thickness + int(rng.integers(3, side // 8 + 4))
        ink[y : y + thickness, left:right] = 1.0
    return ink


def boxed(rng, digits28: list[np.ndarray]) -> Image.Image:
    """Handwritten digits in a form's boxes, one a box: separate boxes or a row of boxes sharing their
    sides, some of them smaller than the writing, which then crosses their lines; clean or photographed."""
    return _clean_or_photo(rng, _boxed_ink(rng, digits28))


def _boxed_ink(rng, digits28: list[np.ndarray]) -> np.ndarray:
    """boxed's ink, in 0..1 (1 = ink)."""
    side = int(rng.integers(60, 120))
    cell = int(side * rng.uniform(0.8, 1.4))
    comb = rng.random() < 0.5
    gap = 0 if comb else int(rng.integers(side // 10, side // 2))
    thickness = int(rng.integers(1, max(2, side // 30) + 1))
    margin = side // 2
    ink = np.zeros((cell + 2 * margin, 2 * margin + len(digits28) * (cell + gap)), dtype=np.float32)
    for k, digit in enumerate(digits28):
        x0, y0 = margin + k * (cell + gap), margin
        centre = (y0 + cell // 2 - side // 2, x0 + cell // 2 - side // 2)
        glyph = _upscaled(digit, side)
        top, left = max(0, centre[0]), max(0, centre[1])
        crop = glyph[top - centre[0] :, left - centre[1] :][: ink.shape[0] - top, : ink.shape[1] - left]
        region = ink[top : top + crop.shape[0], left : left + crop.shape[1]]
        np.maximum(region, crop, out=region)
        for edge in (ink[y0 : y0 + thickness, x0 : x0 + cell], ink[y0 + cell - thickness : y0 + cell, x0 : x0 + cell],
                     ink[y0 : y0 + cell, x0 : x0 + thickness], ink[y0 : y0 + cell, x0 + cell - thickness : x0 + cell]):
            edge[...] = 1.0
    return ink


def glare_spot(shape, centre, radius, strength) -> np.ndarray:
    """Grey levels a bright spot adds (reflected off paper and ink alike): strength at centre (row,
    column), fading over radius pixels."""
    ys, xs = np.indices(shape)
    return strength * np.exp(-((ys - centre[0]) ** 2 + (xs - centre[1]) ** 2) / (2 * radius**2))


def darker_corners(shape, depth=0.8) -> np.ndarray:
    """A lens's light: 1 in the middle, falling off towards the corners."""
    ys, xs = np.indices(shape)
    return 1 - depth * ((ys / shape[0] - 0.5) ** 2 + (xs / shape[1] - 0.5) ** 2)


def shadow_edge(shape, angle, offset, depth, softness) -> np.ndarray:
    """The light under a shadow across part of an image: 1, and 1 - depth past an edge at angle, its
    offset from the centre a share of the height, its rim softness pixels wide."""
    ys, xs = np.indices(shape)
    beyond = np.cos(angle) * (xs - shape[1] / 2) + np.sin(angle) * (ys - shape[0] / 2) - offset * shape[0]
    return 1 - depth / (1 + np.exp(-beyond / softness))


def _glare(rng, photo, paper, ink):
    """A bright spot of 50-110 grey levels, under a lens's darker corners."""
    h, w = photo.shape
    centre, radius = (rng.uniform(0.3, 0.7) * h, rng.uniform(0.2, 0.8) * w), rng.uniform(0.15, 0.35) * max(h, w)
    spot = glare_spot(photo.shape, centre, radius, rng.uniform(50, 110))
    return np.minimum(photo * darker_corners(photo.shape) + spot, 255)


def _shadow(rng, photo, paper, ink):
    """A phone's or a hand's shadow across part of the number: 35-60% darker, its edge a few pixels soft."""
    angle, offset = rng.uniform(0, 2 * np.pi), rng.uniform(-0.25, 0.25)
    depth, softness = rng.uniform(0.35, 0.6), rng.uniform(1, 4)
    return photo * shadow_edge(photo.shape, angle, offset, depth, softness)


def _pencil(rng, photo, paper, ink):
    """Faint pencil: ink only 15-30% darker than the paper."""
    return paper * (1 - rng.uniform(0.15, 0.3) * ink)


def lit(rng, digits28: list[np.ndarray]) -> Image.Image:
    """A handwritten number photographed under glare, across a shadow's hard edge, or in faint pencil."""
    side = int(rng.integers(60, 120))
    ink = np.pad(_number_row(rng, digits28, side), side // 2)
    return _ink_on_paper(rng, ink, [_glare, _shadow, _pencil][int(rng.integers(3))])


def phone(rng, digits28: list[np.ndarray]) -> Image.Image:
    """A handwritten number 40-90 pixels tall somewhere in a 1600 x 1200 photo of a page."""
    side = int(rng.integers(40, 90))
    row = _number_row(rng, digits28, side)
    page = np.zeros((1200, 1600), np.float32)
    y, x = int(rng.integers(100, 1100 - side)), int(rng.integers(100, 1500 - row.shape[1]))
    page[y : y + side, x : x + row.shape[1]] = row
    return _ink_on_paper(rng, page)


def table(rng, digits28: list[np.ndarray]) -> Image.Image:
    """A handwritten number on a sheet lying on a table (a white desk, brighter than the sheet's paper
    in the photo's light; a grey one; dark wood), the photo turned 2-12 degrees, the sheet filling most
    of it and sometimes running off its edges."""
    side = int(rng.integers(50, 100))
    ink = np.pad(_number_row(rng, digits28, side), side)
    return _on_desk(rng, ink, turns=(2, 12), room=(1.0, 1.3), desks=TABLES, cut=True)


def card(rng, digits28: list[np.ndarray]) -> Image.Image:
    """A handwritten number on a small card (an index card, a sticky note) lying on a grey desk or dark
    wood, the photo turned up to 30 degrees, the turned card's box a sixth to a half of it."""
    side = int(rng.integers(40, 90))
    ink = np.pad(_number_row(rng, digits28, side), side // 2)
    return _on_desk(rng, ink, turns=CARD_TURNS, room=(1.4, 2.5), desks=TABLES[1:], cut=False)


def _on_desk(rng, ink: np.ndarray, turns, room, desks, cut: bool) -> Image.Image:
    """ink on a sheet of paper lying on a desk (its grey levels one of desks' ranges), photographed
    turned between turns (degrees) either way; the photo room times the turned sheet's width and
    height, cut by up to a tenth on each side where cut is set."""
    paper = _paper(rng, ink.shape)
    sheet = Image.fromarray(np.clip(paper * (1 - rng.uniform(0.55, 0.85) * ink), 0, 255).astype(np.uint8))
    angle = float(rng.choice([-1, 1]) * rng.uniform(*turns))
    turned = sheet.rotate(angle, Image.Resampling.BICUBIC, expand=True)
    cover = Image.new("L", sheet.size, 255).rotate(angle, Image.Resampling.BICUBIC, expand=True)
    w, h = turned.size
    width, height = int(w * rng.uniform(*room)), int(h * rng.uniform(*room))
    low, high = desks[int(rng.integers(len(desks)))]
    grain = ndimage.gaussian_filter(rng.normal(0, 10, (height, width)), (1, 8))  # wood's grain, a desk's texture
    photo = Image.fromarray(np.clip(rng.uniform(low, high) + grain, 0, 255).astype(np.uint8))
    photo.paste(turned, (int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))), cover)
    if cut:
        edges = rng.uniform(0, 0.1, 4) * [width, height, width, height]
        photo = photo.crop((int(edges[0]), int(edges[1]), width - int(edges[2]), height - int(edges[3])))
    photo = photo.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 1.2))))
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=int(rng.integers(60, 90)))
    return Image.open(io.BytesIO(buffer.getvalue()))


def turned(rng, digits28: list[np.ndarray]) -> Image.Image:
    """A handwritten number photographed with the camera turned 12-25 degrees either way, the paper
    filling the frame."""
    side = int(rng.integers(50, 100))
    return _photographed_turned(rng, np.pad(_number_row(rng, digits28, side), side // 2), TURNS)


def turned_form(rng, digits28: list[np.ndarray]) -> Image.Image:
    """A handwritten number in a form's boxes or on ruled paper (as boxed and ruled draw them)
    photographed with the camera turned 1-6 degrees either way, the paper filling the frame."""
    return _photographed_turned(rng, (_boxed_ink if rng.random() < 0.5 else _ruled_ink)(rng, digits28), FORM_TURNS)


def _photographed_turned(rng, ink: np.ndarray, turns: tuple[float, float]) -> Image.Image:
    """ink photographed with the camera turned between turns (degrees) either way, the paper filling
    the frame."""
    angle = float(rng.choice([-1, 1]) * rng.uniform(*turns))
    return _ink_on_paper(rng, np.clip(ndimage.rotate(ink, angle, order=1), 0, 1))


def _write_unseen_fonts(folder: Path, rng, count: int) -> None:
    """Printed digits in fonts no recipe trained on; a stream of its own, so the other categories
    stay the images they were before this one was added."""
    font_list = unseen_fonts()
    for n in range(count if font_list else 0):
        digit = int(rng.integers(0, 10))
        printed(rng, font_list[n % len(font_list)], digit).save(folder / f"{digit}_{n}.png")


def printed_number(rng, font: Path, text: str) -> Image.Image:
    """A printed number of 2-5 digits: clean black on white, or photographed on grey paper."""
    face = ImageFont.truetype(str(font), int(rng.integers(30, 90)))
    left, top, right, bottom = face.getbbox(text)
    canvas = Image.new("L", (right - left + 40, bottom - top + 40), 255)
    ImageDraw.Draw(canvas).text((20 - left, 20 - top), text, fill=0, font=face)
    if rng.random() < 0.5:
        return canvas
    return _ink_on_paper(rng, 1 - np.asarray(canvas, dtype=np.float32) / 255)


def small_print(rng, font: Path, text: str) -> Image.Image:
    """A number printed 10-16 pixels high (digits 7-12 pixels tall), dark on light, a margin of a line
    or two round it: a crop of a screenshot of a form or an invoice."""
    size = int(rng.integers(10, 17))
    face = ImageFont.truetype(str(font), size)
    left, top, right, bottom = face.getbbox(text)
    margin = rng.integers(size // 2, 2 * size, 4)
    canvas = Image.new("L", (right - left + int(margin[0] + margin[1]), bottom - top + int(margin[2] + margin[3])),
                       int(rng.integers(225, 256)))
    ImageDraw.Draw(canvas).text((int(margin[0]) - left, int(margin[2]) - top), text, fill=int(rng.integers(0, 70)),
                                font=face)
    return canvas


def brush(rng, digit28: np.ndarray) -> Image.Image:
    """The digit drawn with a broad white brush on a black canvas (a drawing app, MNIST's own colours):
    enlarged to 150-250 pixels, its strokes thickened by 4-10% of that, a margin of black round it."""
    side = int(rng.integers(150, 251))
    big = np.asarray(Image.fromarray(digit28).resize((side, side), Image.Resampling.BICUBIC))
    radius = max(1, int(side * rng.uniform(0.02, 0.05)))
    ys, xs = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    bold = ndimage.grey_dilation(big, footprint=xs**2 + ys**2 <= radius**2)
    return Image.fromarray(np.pad(bold, int(rng.integers(10, side // 3))))


def framed(rng, digits28: list[np.ndarray]) -> Image.Image:
    """A number circled (an ellipse through its box's surroundings) or in a rounded frame, drawn with a
    pen about as broad as the digits' strokes, a quarter to half a digit's height from them; on clean
    paper or photographed."""
    side = int(rng.integers(60, 120))
    row = _number_row(rng, digits28, side)
    gap = int(side * rng.uniform(0.25, 0.5))
    room = (int(1.2 * side), row.shape[1] // 4 + side)  # the whole ellipse in the image
    ink = np.pad(row, ((room[0], room[0]), (room[1], room[1])))
    rows, cols = np.flatnonzero(ink.max(axis=1) > 0.2), np.flatnonzero(ink.max(axis=0) > 0.2)
    box = (cols[0] - gap, rows[0] - gap, cols[-1] + gap, rows[-1] + gap)
    curve = Image.new("L", (ink.shape[1], ink.shape[0]), 0)
    pen = max(2, int(side * rng.uniform(0.06, 0.1)))
    if rng.random() < 0.5:
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        rx, ry = 0.7 * (box[2] - box[0]), 0.7 * (box[3] - box[1])
        ImageDraw.Draw(curve).ellipse((cx - rx, cy - ry, cx + rx, cy + ry), outline=255, width=pen)
    else:
        ImageDraw.Draw(curve).rounded_rectangle(box, radius=gap, outline=255, width=pen)
    curve = np.asarray(curve.filter(ImageFilter.GaussianBlur(0.7)), dtype=np.float32) / 255.0
    return _clean_or_photo(rng, np.maximum(ink, curve))


def display(rng, text: str) -> Image.Image:
    """text in seven segments (thin or bold, upright or slanted; a third of them lit light on black, the
    rest dark on light, clean or photographed) or in 5 x 7 dots (round, a dot 0.55-0.9 of the pitch wide;
    half the zeros slashed, as a character LCD's), clean or photographed."""
    from digitnet.data.printed import DOT_ROWS, SEGMENTS, SLASHED_ZERO

    height = int(rng.integers(30, 120))
    ink = Image.new("F", (int(height * (0.85 * len(text) + 1.2)), 2 * height), 0.0)
    draw = ImageDraw.Draw(ink)
    x, top = height * 0.6, height * 0.5
    if rng.random() < 0.5:
        width, thick = height * rng.uniform(0.45, 0.6), height * rng.uniform(0.08, 0.17)
        gap, slant, half = height * rng.uniform(0.01, 0.04), rng.uniform(0.0, 0.15), height / 2
        boxes = {"a": (gap, 0, width - gap, thick), "d": (gap, height - thick, width - gap, height),
                 "g": (gap, half - thick / 2, width - gap, half + thick / 2), "f": (0, gap, thick, half - gap),
                 "b": (width - thick, gap, width, half - gap), "e": (0, half + gap, thick, height - gap),
                 "c": (width - thick, half + gap, width, height - gap)}
        for char in text:
            for segment in SEGMENTS[int(char)]:
                x0, y0, x1, y1 = boxes[segment]
                draw.polygon([(x + px + slant * (height - py), top + py) for px, py in
                              ((x0, y0), (x1, y0), (x1, y1), (x0, y1))], fill=1.0)
            x += width + height * rng.uniform(0.2, 0.35)
        lit = rng.random() < 1 / 3
    else:
        pitch, radius = height / 7, height / 14 * rng.uniform(0.55, 0.9)
        slashed = rng.random() < 0.5
        for char in text:
            rows = SLASHED_ZERO if slashed and char == "0" else DOT_ROWS[int(char)]
            for row, bits in enumerate(rows.split()):
                for col, bit in enumerate(bits):
                    if bit == "1":
                        cx, cy = x + (col + 0.5) * pitch, top + (row + 0.5) * pitch
                        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=1.0)
            x += pitch * rng.uniform(6.0, 7.0)
        lit = False
    ink = np.asarray(ink, dtype=np.float32)
    if lit:
        return Image.fromarray((ink * rng.uniform(150, 255) + (1 - ink) * rng.uniform(0, 40)).astype(np.uint8))
    return _clean_or_photo(rng, ink)


def _write_displays(folder: Path, rng, count: int) -> None:
    """Numbers of 1-4 digits drawn by display, from a stream of their own."""
    for n in range(count):
        text = "".join(str(d) for d in rng.integers(0, 10, int(rng.integers(1, 5))))
        display(rng, text).convert("L").save(folder / f"{text}_{n}.png")


def _write_printed_numbers(folder: Path, draw, font_list: list[Path], rng, count: int) -> None:
    """Numbers of 2-5 digits drawn by draw(rng, font, text), the fonts in turn, from a stream of their own."""
    for n in range(count if font_list else 0):
        text = "".join(str(d) for d in rng.integers(0, 10, int(rng.integers(2, 6))))
        draw(rng, font_list[n % len(font_list)], text).convert("L").save(folder / f"{text}_{n}.png")


def _write_digits(folder: Path, draw, digits: np.ndarray, labels: np.ndarray, rng, count: int) -> None:
    """Single held-out digits drawn by draw(rng, digit28) as PNGs, from a stream of their own."""
    for n in range(count):
        i = int(rng.integers(len(digits)))
        draw(rng, digits[i]).save(folder / f"{labels[i]}_{n}.png")


def _write_lined(out: Path, digits: np.ndarray, labels: np.ndarray, rng, count: int) -> None:
    """The ruled and boxed numbers (1-4 digits), from a stream of their own."""
    for n in range(count):
        for category, draw in (("ruled", ruled), ("boxed", boxed)):
            chosen = rng.integers(len(digits), size=int(rng.integers(1, 5)))
            text = "".join(str(labels[j]) for j in chosen)
            draw(rng, [digits[j] for j in chosen]).convert("L").save(out / category / f"{text}_{n}.png")


def _write_photographed(out: Path, digits: np.ndarray, labels: np.ndarray, rng, count: int) -> None:
    """The lit and phone numbers (1-4 digits), from a stream of their own."""
    for n in range(count):
        for category, draw in (("lit", lit), ("phone", phone)):
            chosen = rng.integers(len(digits), size=int(rng.integers(1, 5)))
            text = "".join(str(labels[j]) for j in chosen)
            draw(rng, [digits[j] for j in chosen]).save(out / category / f"{text}_{n}.jpg", quality=90)


def _write_numbers(folder: Path, draw, digits: np.ndarray, labels: np.ndarray, rng, count: int) -> None:
    """Numbers (1-4 digits) drawn by draw(rng, digits28) as JPEGs, from a stream of their own."""
    for n in range(count):
        chosen = rng.integers(len(digits), size=int(rng.integers(1, 5)))
        text = "".join(str(labels[j]) for j in chosen)
        draw(rng, [digits[j] for j in chosen]).save(folder / f"{text}_{n}.jpg", quality=90)


def write_set(out: Path, digits: np.ndarray, labels: np.ndarray, seed: int = 0, per_category: int = 200) -> dict:
    """Write every category into out/<category>/; returns {category: number of images}."""
    rng = np.random.default_rng(seed)
    counts = {}
    for category in CATEGORIES:
        (out / category).mkdir(parents=True, exist_ok=True)
    font_list = fonts()
    for n in range(per_category):
        font, digit = font_list[n % len(font_list)], int(rng.integers(0, 10))
        printed(rng, font, digit).save(out / "printed" / f"{digit}_{n}.png")
        i = int(rng.integers(len(digits)))
        photo(rng, digits[i]).save(out / "photos" / f"{labels[i]}_{n}.jpg", quality=95)
        i = int(rng.integers(len(digits)))
        pen(rng, digits[i]).save(out / "pens" / f"{labels[i]}_{n}.png")
        chosen = rng.integers(len(digits), size=int(rng.integers(2, 5)))
        text = "".join(str(labels[j]) for j in chosen)
        number(rng, [digits[j] for j in chosen]).convert("L").save(out / "numbers" / f"{text}_{n}.png")
    _write_unseen_fonts(out / "unseen-fonts", np.random.default_rng([seed, 1]), per_category)
    _write_printed_numbers(out / "printed-numbers", printed_number, unseen_fonts(), np.random.default_rng([seed, 2]),
                           per_category)
    _write_lined(out, digits, labels, np.random.default_rng([seed, 3]), per_category)
    _write_photographed(out, digits, labels, np.random.default_rng([seed, 4]), per_category)
    _write_numbers(out / "table", table, digits, labels, np.random.default_rng([seed, 5]), per_category)
    _write_numbers(out / "turned", turned, digits, labels, np.random.default_rng([seed, 6]), per_category)
    _write_numbers(out / "turned-forms", turned_form, digits, labels, np.random.default_rng([seed, 7]), per_category)
    _write_numbers(out / "cards", card, digits, labels, np.random.default_rng([seed, 8]), per_category)
    _write_printed_numbers(out / "small-print", small_print, fonts(), np.random.default_rng([seed, 9]), per_category)
    _write_digits(out / "brush", brush, digits, labels, np.random.default_rng([seed, 10]), per_category)
    _write_numbers(out / "framed", framed, digits, labels, np.random.default_rng([seed, 11]), per_category)
    _write_displays(out / "displays", np.random.default_rng([seed, 12]), per_category)
    for category in CATEGORIES:
        counts[category] = len(list((out / category).iterdir()))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--data-dir", required=True, help="folder with MNIST's t10k files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-category", type=int, default=200)
    args = parser.parse_args()
    from digitnet.data import load_dataset

    data = load_dataset("mnist-10k", args.data_dir, progress=False)
    print(write_set(args.out, data.x_test, data.y_test, args.seed, args.per_category))


if __name__ == "__main__":
    main()
