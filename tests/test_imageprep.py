import io
import json
import math
import sys
from pathlib import Path

import matplotlib

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from scipy import ndimage

from conftest import strokes
from digitnet.imageprep import ImageError, ink_map, open_image, prepare, prepare_digits, without_rulings
from digitnet.predict import Predictor

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import real_world_set  # noqa: E402  (the real-world set's drawings: photos, numbers, lines, light)


FONTS = Path(matplotlib.get_data_path()) / "fonts" / "ttf"  # matplotlib's own faces: on every installation


def _font(face: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONTS / face), size)


def _png(image: Image.Image, fmt="PNG", **kw) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kw)
    return buffer.getvalue()


def _centre_of_mass(pixels):
    ys, xs = np.indices(pixels.shape)
    total = pixels.sum()
    return (ys * pixels).sum() / total, (xs * pixels).sum() / total


def _dark_on_light(digit28: np.ndarray, size=280, offset=(0, 0), canvas=None) -> Image.Image:
    """An MNIST digit drawn black on white, scaled up, placed at offset on a larger canvas."""
    big = Image.fromarray(255 - digit28).resize((size, size), Image.Resampling.BICUBIC)
    page = Image.new("L", canvas or (size, size), 255)
    page.paste(big, offset)
    return page


def test_result_is_mnist_format(mnist_test_digits):
    prepared = prepare(_dark_on_light(mnist_test_digits[0][0]))
    assert prepared.pixels.shape == (28, 28) and prepared.pixels.dtype == np.uint8
    assert prepared.inverted
    rows, cols = np.nonzero(prepared.pixels > 0)
    assert max(rows.max() - rows.min(), cols.max() - cols.min()) + 1 <= 22  # 20x20 box plus anti-aliasing
    cy, cx = _centre_of_mass(prepared.pixels.astype(float))
    assert abs(cy - 14.0) < 0.1 and abs(cx - 14.0) < 0.1  # MNIST's mean centre of mass


@pytest.mark.slow
def test_digit_in_a_corner_is_recentred(mnist_run, mnist_test_digits):
    predictor = Predictor(mnist_run)
    digits, _ = mnist_test_digits
    for digit in digits[:20]:
        # 500x400 stays under the working size, so the two differ only by an integer shift.
        corner = _dark_on_light(digit, size=120, offset=(0, 0), canvas=(500, 400))
        centred = _dark_on_light(digit, size=120, offset=(190, 140), canvas=(500, 400))
        a, b = prepare(corner).pixels, prepare(centred).pixels
        np.testing.assert_array_equal(a, b)
        assert predictor.predict_image(corner).digit == predictor.predict_image(centred).digit


@pytest.mark.slow
def test_inverted_image_gives_the_same_prediction(mnist_run, mnist_test_digits):
    predictor = Predictor(mnist_run)
    for digit in mnist_test_digits[0][:50]:
        dark = _dark_on_light(digit)
        light = Image.fromarray(255 - np.asarray(dark))
        a, b = predictor.predict_image(dark), predictor.predict_image(light)
        assert a.inverted and not b.inverted
        assert a.digit == b.digit
        assert np.abs(a.prepared.astype(int) - b.prepared.astype(int)).max() <= 1


def test_transparent_background_and_colour(mnist_test_digits):
    digit = mnist_test_digits[0][3]
    on_white = prepare(_dark_on_light(digit)).pixels
    rgba = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    ink = Image.fromarray(digit).resize((280, 280), Image.Resampling.BICUBIC)
    rgba.putalpha(ink)  # black ink whose coverage is the alpha channel, on nothing
    assert np.abs(prepare(rgba).pixels.astype(int) - on_white.astype(int)).max() <= 2
    blue_on_yellow = Image.merge("RGB", [Image.fromarray(255 - np.asarray(_dark_on_light(digit)))] * 2 + [
        _dark_on_light(digit)]).convert("RGB")
    assert prepare(blue_on_yellow).pixels.max() == 255


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF"])
def test_formats(fmt, mnist_test_digits):
    image = _dark_on_light(mnist_test_digits[0][0]).convert("RGB")
    prepared = prepare(open_image(_png(image, fmt), f"x.{fmt.lower()}"))
    assert prepared.pixels.max() > 200


def test_first_frame_of_an_animation(mnist_test_digits):
    frames = [_dark_on_light(d).convert("P") for d in mnist_test_digits[0][:3]]
    data = io.BytesIO()
    frames[0].save(data, format="GIF", save_all=True, append_images=frames[1:])
    first = prepare(open_image(data.getvalue())).pixels
    np.testing.assert_array_equal(first, prepare(_dark_on_light(mnist_test_digits[0][0]).convert("P")).pixels)


def test_sixteen_bit_greyscale(mnist_test_digits):
    wide = (np.asarray(_dark_on_light(mnist_test_digits[0][0])).astype(np.uint16) * 257)
    image = Image.fromarray(wide)
    assert prepare(open_image(_png(image))).pixels.max() == 255


@pytest.mark.parametrize("image", [Image.new("L", (100, 100), 255), Image.new("RGB", (50, 80), (3, 3, 3)),
                                   Image.new("RGBA", (64, 64), (0, 0, 0, 0))])
def test_blank_images_are_refused(image):
    with pytest.raises(ImageError, match="no digit found"):
        prepare(image)


def test_unreadable_and_huge_images():
    with pytest.raises(ImageError, match="not an image Pillow can read"):
        open_image(b"definitely not an image", "notes.txt")
    with pytest.raises(ImageError, match="x.png: truncated or corrupt"):
        open_image(_png(Image.new("L", (300, 300), 128))[:200], "x.png")
    huge = _png(Image.new("1", (7000, 6000), 1))  # 42 MP, a few kB
    with pytest.raises(ImageError, match="7000x6000 is 42 MP, more than the 40 MP limit"):
        open_image(huge, "big.png")


_TWO_SPECKS_AT_THE_EDGES = np.zeros((7, 25))
_TWO_SPECKS_AT_THE_EDGES[0, 0], _TWO_SPECKS_AT_THE_EDGES[6, 11] = 16.0, 35.0


@settings(max_examples=150, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 60), st.integers(1, 90)), elements=st.floats(0, 255)))
@example(_TWO_SPECKS_AT_THE_EDGES).via("two one-pixel digits sloping, at the edges: turned, nothing was read past them")
@example(np.array([[0, 31, 31, 31, 31, 31], [31, 31, 31, 31, 31, 31], [31, 31, 31, 0, 31, 31]], dtype=np.float64)).via(
    "two one-pixel digits sloping: each turned, its mask nowhere over half a pixel")
def test_any_array_gives_a_digit_or_an_image_error(array):
    try:
        prepared = prepare(array)
    except ImageError:
        return
    assert prepared.pixels.shape == (28, 28) and prepared.pixels.dtype == np.uint8
    assert prepared.pixels.max() > 0
    digits = prepare_digits(array)  # the same image read as a number: at least one digit, none empty
    assert digits and all(d.pixels.shape == (28, 28) and d.pixels.max() > 0 for d in digits)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_open_or_raise_an_image_error(data):
    try:
        image = open_image(data, "upload")
    except ImageError as exc:
        assert str(exc).startswith("upload: ") and "\n" not in str(exc)
        return
    try:
        prepare(image)
    except ImageError:
        pass


@pytest.mark.slow
def test_upscaled_png_and_jpeg_agree_with_the_raw_digits(mnist_run, mnist_test_digits):
    predictor = Predictor(mnist_run)
    digits = mnist_test_digits[0][:1000]
    raw = predictor.probabilities(digits).argmax(1)
    agreement = {}
    for fmt, options in (("PNG", {}), ("JPEG", {"quality": 90})):
        predicted = []
        for digit in digits:
            big = Image.fromarray(digit).resize((280, 280), Image.Resampling.BICUBIC)
            predicted.append(predictor.predict_image(_png(big, fmt, **options), fmt).digit)
        agreement[fmt] = float((np.array(predicted) == raw).mean())
    print("agreement with raw 28x28 predictions over 1,000 digits:", agreement)
    assert min(agreement.values()) >= 0.97, agreement


@settings(max_examples=60, deadline=None)
@given(st.integers(20, 200), st.integers(20, 200), st.floats(0.1, 0.9), st.floats(0.1, 0.9), st.integers(3, 40))
def test_centre_of_mass_lands_on_mnists_within_a_tenth_of_a_pixel(width, height, fx, fy, radius):
    """A blob anywhere in an image of any size: its prepared centre of mass is (14.0, 14.0)."""
    image = Image.new("L", (width + 2 * radius, height + 2 * radius), 255)
    x, y = radius + fx * width, radius + fy * height
    ImageDraw.Draw(image).ellipse((x - radius, y - radius * 0.6, x + radius, y + radius * 0.6), fill=0)
    cy, cx = _centre_of_mass(prepare(image).pixels.astype(float))
    assert abs(cy - 14.0) <= 0.1 and abs(cx - 14.0) <= 0.1


def _photo_of(digit28, seed):
    """A synthetic photo (grey paper, light gradient, shadow, grain, blur, tilt, JPEG) of a digit."""
    return Image.open(io.BytesIO(_png(real_world_set.photo(np.random.default_rng(seed), digit28).convert("L"), "JPEG")))


def test_a_photographed_digit_is_20_pixels_tall(mnist_test_digits):
    for seed, digit in enumerate(mnist_test_digits[0][:20]):
        if np.ptp(np.flatnonzero(digit.any(axis=1))) < np.ptp(np.flatnonzero(digit.any(axis=0))):
            continue  # wider than tall: its width is the 20
        prepared = prepare(_photo_of(digit, seed)).pixels
        rows = np.flatnonzero((prepared > 40).any(axis=1))
        assert 19 <= rows[-1] - rows[0] + 1 <= 21, seed


def _number(text, gap, font_size=90, broken=False):
    """Printed digits side by side: gap in pixels between them (negative: they touch)."""
    font = _font("DejaVuSans-Bold.ttf", font_size)
    glyphs = []
    for ch in text:
        g = Image.new("L", (font_size, int(font_size * 1.3)), 255)
        ImageDraw.Draw(g).text((0, 0), ch, fill=0, font=font)
        ink = np.asarray(g) < 128
        cols = np.flatnonzero(ink.any(axis=0))
        glyphs.append(np.asarray(g)[:, cols[0] : cols[-1] + 1])
    width = sum(g.shape[1] for g in glyphs) + gap * (len(glyphs) - 1) + 80
    row = np.full((glyphs[0].shape[0] + 40, width), 255, np.uint8)
    x = 40
    for g in glyphs:
        region = row[20 : 20 + g.shape[0], x : x + g.shape[1]]
        np.minimum(region, g, out=region)
        x += g.shape[1] + gap
    if broken:  # a white line through every digit's middle: broken strokes
        row[20 + glyphs[0].shape[0] // 2 : 23 + glyphs[0].shape[0] // 2] = 255
    return Image.fromarray(row)


def test_what_preparation_returns_serialises_as_json_for_either_ink():
    """The server answers with a digit's polarity and box as JSON: numpy's scalars there were a 500."""
    page = np.random.default_rng(0).normal(40, 3, (80, 80))
    page[20:60, 36:44] = 210  # a light 1 on dark paper
    for image in (page, 255 - page):
        digit = prepare(np.clip(image, 0, 255).astype(np.uint8))
        assert json.loads(json.dumps({"inverted": digit.inverted, "box": digit.box}))["inverted"] == (image is not page)


@pytest.mark.parametrize("text", ["42", "305", "2026"])
@pytest.mark.parametrize(("gap", "broken"), [(25, False), (0, False), (25, True)],
                         ids=["apart", "touching", "broken"])
def test_numbers_are_cut_into_their_digits_left_to_right(text, gap, broken):
    digits = prepare_digits(_number(text, gap, broken=broken))
    assert len(digits) == len(text)
    lefts = [d.box[0] for d in digits]
    assert lefts == sorted(lefts)
    assert all(d.pixels.shape == (28, 28) for d in digits)


def _on_a_plate(text: str, plate: int, wall: int, angle: float) -> Image.Image:
    """text printed light (grey 240, lighter than the wall) on a dark plate (grey plate) on a light wall (grey wall), the
    plate turned angle degrees: a house number, a sign."""
    font = _font("DejaVuSans-Bold.ttf", 70)
    left, top, right, bottom = font.getbbox(text)
    sign = Image.new("L", (right - left + 60, bottom - top + 60), plate)
    ImageDraw.Draw(sign).text((30 - left, 30 - top), text, fill=240, font=font)
    sign = sign.rotate(angle, Image.Resampling.BICUBIC, expand=True, fillcolor=wall)
    photo = Image.new("L", (sign.width + 120, sign.height + 100), wall)
    photo.paste(sign, (60, 50))
    return photo.filter(ImageFilter.GaussianBlur(0.8))


@pytest.mark.parametrize("text", ["7", "42", "1309"])
@pytest.mark.parametrize(("plate", "wall", "angle"), [(30, 230, 0.0), (60, 210, 4.0), (45, 235, -3.0)])
def test_light_print_on_a_dark_plate_on_a_white_wall_is_read_as_light_ink(text, plate, wall, angle):
    """The wall's white border was taken for paper, so the plate was one dark blob of ink; the
    plate, as dark as the darkest of the image and written on with light marks, is read alone."""
    read = prepare_digits(_on_a_plate(text, plate, wall, angle))
    assert len(read) == len(text) and not any(d.inverted for d in read)


@pytest.mark.parametrize(("category", "seed"), [("table", 51), ("table", 116), ("boxed", 156), ("boxed", 191)])
def test_a_sheet_or_a_form_on_white_with_light_marks_on_it_is_no_plate(mnist_test_digits, category, seed):
    """A sheet on a white desk that _sheet_on_desk leaves alone, or a form's boxes, shows a dark
    region with lighter marks inside, as a plate does; but its dark ink is darker still, so it is
    no plate and the ink stays dark (these seeds were read as light ink without that test)."""
    digits = mnist_test_digits[0]
    rng = np.random.default_rng(seed)
    chosen = [digits[int(rng.integers(len(digits)))] for _ in range(int(rng.integers(1, 5)))]
    read = prepare_digits(getattr(real_world_set, category)(rng, chosen))
    assert all(d.inverted for d in read)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(st.text("0123456789", min_size=1, max_size=4), st.sampled_from(["ellipse", "rounded", "rectangle"]),
       st.integers(16, 40), st.integers(5, 9))
@example("71", "rounded", 20, 5).via("a rounded frame round 71: read as 2")
@example("741", "ellipse", 20, 5).via("a circle round 741: read as 833")
@example("7", "ellipse", 60, 6).via("a loose circle round one digit, four times its height")
def test_a_circle_or_a_frame_round_a_number_is_not_read(text, shape, margin, width):
    """A number circled (a worksheet's answer) or in a frame (a label, a plate): the closed curve holds
    the digits in its inside and is no digit itself. Left as before: a curve 2-3 pixels wide in the
    working image comes apart in the mask where it runs diagonally, and a frame nearer the digits
    than a quarter of their height has its straight sides taken out as a form's box; the arcs or
    corners left are read with the digits."""
    row = _number(text, 25)
    room = row.width // 3 + margin  # the ellipse reaches a quarter of the box past its sides
    page = Image.new("L", (row.width + 2 * room, row.height + 2 * room), 255)
    page.paste(row, (room, room))
    ink = np.asarray(page) < 128
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    box = (cols[0] - margin, rows[0] - margin, cols[-1] + margin, rows[-1] + margin)
    draw = ImageDraw.Draw(page)
    if shape == "ellipse":  # through the box's corners' surroundings: half again as wide and tall as the box
        cx, cy, rx, ry = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, 0.75 * (box[2] - box[0]), 0.75 * (box[3] - box[1])
        draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), outline=0, width=width)
    elif shape == "rounded":
        draw.rounded_rectangle(box, radius=margin + 10, outline=0, width=width)
    else:
        draw.rectangle(box, outline=0, width=width)
    framed, plain = prepare_digits(page), prepare_digits(row)
    assert len(framed) == len(text)
    assert all(np.abs(f.pixels.astype(int) - p.pixels.astype(int)).mean() < 12 for f, p in zip(framed, plain))


@pytest.mark.parametrize("inner", [0.1, 0.15])
def test_a_small_mark_inside_a_0_leaves_the_0_a_digit(inner):
    """A dot or a short stroke inside a 0's loop (a dotted zero, a stray mark) is enclosed by it, but
    too short for the 0 to be a frame round it."""
    page = Image.new("L", (300, 300), 255)
    draw = ImageDraw.Draw(page)
    draw.ellipse((90, 40, 210, 260), outline=0, width=14)
    half = inner * 220 / 2
    draw.line((150, 150 - half, 150, 150 + half), fill=0, width=10)
    assert len(prepare_digits(page)) == 1
    assert prepare(page).pixels.astype(bool).sum() > 150  # the 0 itself, not the mark alone


@pytest.mark.parametrize(("seed", "index"), [(0, 34), (0, 51), (1, 80), (1, 113), (1, 114), (1, 146)])
def test_the_dot_of_a_dotted_zero_leaves_the_zero_a_digit(seed, index):
    """Liberation Mono's zero holds a dot, which blurred in a photo is a fifth of its height: the zero,
    closed round it, is no frame, as the dot is a mark beside the number's other digits (these
    `printed-numbers` of benchmarks/real_world_set.py lost their zeros without that test)."""
    if not real_world_set.unseen_fonts():
        pytest.skip("no Liberation fonts installed")
    rng, fonts = np.random.default_rng([seed, 2]), real_world_set.unseen_fonts()
    for n in range(index + 1):  # the category's stream up to the image
        text = "".join(str(d) for d in rng.integers(0, 10, int(rng.integers(2, 6))))
        image = real_world_set.printed_number(rng, fonts[n % len(fonts)], text)
    assert "0" in text and len(prepare_digits(image)) == len(text)


def _small_print(text: str, face: str, size: int) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """text printed size pixels high (a screenshot of a form, an invoice) with a margin of size all
    round, and the box (left, top, right, bottom) of its ink."""
    font = _font(face, size)
    left, top, right, bottom = font.getbbox(text)
    image = Image.new("L", (right - left + 2 * size, bottom - top + 2 * size), 255)
    ImageDraw.Draw(image).text((size - left, size - top), text, fill=30, font=font)
    ink = np.asarray(image) < 200
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    return image, (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.text("0123456789", min_size=2, max_size=5),
       st.sampled_from(["DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSans-BoldOblique.ttf",
                        "DejaVuSansMono.ttf"]),
       st.integers(10, 16))
@example("87", "DejaVuSerif.ttf", 10).via("digits 7 pixels tall, serifs touching: read as one digit")
@example("58347", "DejaVuSerif.ttf", 10).via("the same, read as three")
@example("5001", "DejaVuSerif-Italic.ttf", 12).via("slanted, 9 pixels tall: read as three")
@example("404", "DejaVuSans-BoldOblique.ttf", 10).via("bold and slanted: the 0 split into two")
@example("644", "DejaVuSansCondensed-Oblique.ttf", 11).via("narrow and slanted: the 4s as one")
def test_a_number_in_small_print_is_cut_into_its_digits(text, face, size):
    """Digits 8-12 pixels tall, a pixel or two apart: thresholded as they are, neighbours merge into
    one piece. Read again enlarged (interpolated), each is its own, and its box is still given in the
    image's own pixels."""
    image, (left, top, right, bottom) = _small_print(text, face, size)
    digits = prepare_digits(image)
    assert len(digits) == len(text)
    boxes = [d.box for d in digits]
    assert [b[0] for b in boxes] == sorted(b[0] for b in boxes)
    assert abs(boxes[0][0] - left) <= 2 and abs(boxes[-1][2] - right) <= 2
    assert all(abs(b[1] - top) <= 2 and abs(b[3] - bottom) <= 2 for b in boxes if b[3] - b[1] >= 0.9 * (bottom - top))


def test_dark_ink_on_grey_paper_with_darker_surroundings(mnist_test_digits):
    """A photo's paper is often darker than mid-grey, and the table around it darker still: the
    ink's side is judged from the whole image, not from the border."""
    digit = mnist_test_digits[0][0]
    clean = prepare(_dark_on_light(digit, size=140, offset=(80, 60), canvas=(300, 260)))
    page = np.asarray(_dark_on_light(digit, size=140, offset=(80, 60), canvas=(300, 260)), dtype=np.float32)
    photo = 20 + page * (100 / 255)  # ink 20, paper 120
    photo[:, :30] = 60  # the table beyond the paper's left edge
    photo[-25:, :] = 60  # and below it
    prepared = prepare(Image.fromarray(photo.astype(np.uint8)))
    assert prepared.inverted
    assert np.abs(prepared.pixels.astype(int) - clean.pixels.astype(int)).mean() < 8


def test_a_detached_bar_or_tail_is_part_of_its_digit_not_a_digit():
    """A 5 whose top bar does not touch its body and a short 2 whose tail is a separate stroke,
    beside a tall 1: three digits, not five, and the short 2 with its tail is not split."""
    image = strokes((420, 200), [
        [(60, 40), (60, 170)],  # a tall 1
        [(130, 110), (150, 95), (175, 100), (180, 120), (140, 160)], [(142, 163), (200, 163)],  # a short 2 + tail
        [(270, 36), (320, 36)],  # the 5's detached bar...
        [(265, 50), (262, 95), (300, 90), (318, 125), (300, 160), (262, 158)],  # ...and its body
    ])
    digits = prepare_digits(image)
    assert len(digits) == 3
    assert [d.box[0] for d in digits] == sorted(d.box[0] for d in digits)
    assert digits[2].box[1] <= 40  # the bar belongs to the third digit


@pytest.mark.parametrize(("speck", "where"), [((165, 330), "below the 0"), ((170, 20), "above the 0"),
                                              ((330, 175), "right of the 0")])
def test_a_speck_far_from_the_digits_is_no_part_of_them(speck, where):
    """A dot of dust, or what a shadow's edge leaves, over half a digit's height away from the digits:
    it made the digit above or beside it a box larger (a 0 read as 9, a 2 as 8)."""
    lines = [[(60, 110), (60, 240)], [(165, 110), (200, 125), (205, 200), (165, 240), (130, 200), (130, 130), (165, 110)]]
    clean = prepare_digits(strokes((400, 360), lines))
    page = strokes((400, 360), lines)
    ImageDraw.Draw(page).ellipse([speck[0] - 8, speck[1] - 8, speck[0] + 8, speck[1] + 8], fill=0)
    digits = prepare_digits(page)
    assert [d.box for d in digits] == [d.box for d in clean], where
    assert all(np.array_equal(a.pixels, b.pixels) for a, b in zip(digits, clean)), where


@settings(max_examples=40, deadline=None)
@given(st.text("0123456789", min_size=2, max_size=4), st.integers(1, 3), st.sampled_from(["period", "comma", "colon"]),
       st.integers(6, 8), st.integers(30, 60))
@example("12", 1, "colon", 6, 30).via("12:30's colon was read as a digit")
def test_a_period_comma_or_colon_between_digits_is_not_read(text, at, mark, radius, gap):
    """A decimal point, a thousands' comma or a time's colon between printed digits (66 pixels tall,
    the marks 12-24): the same digits as with the gap left blank. A colon's two dots, stacked, were a
    digit (12:30 read as 12530), and a comma joined the digit beside it."""
    assume(at < len(text))
    left, right = np.asarray(_number(text[:at], 20)), np.asarray(_number(text[at:], 20))
    plain = np.concatenate([left, np.full((left.shape[0], gap), 255, np.uint8), right], axis=1)
    rows, _ = _ink_extent(plain)
    marked = Image.fromarray(plain)
    pen = ImageDraw.Draw(marked)
    x = left.shape[1] + gap // 2
    centres = {"period": [rows[-1] - radius], "comma": [rows[-1] - radius],
               "colon": [rows[0] + (rows[-1] - rows[0]) // 3, rows[-1] - radius]}[mark]
    for y in centres:
        pen.ellipse([x - radius, y - radius, x + radius, y + radius], fill=0)
    if mark == "comma":
        pen.line([(x + radius - 1, rows[-1] - radius), (x - radius, rows[-1] + radius)], fill=0, width=radius)
    _same_digits(prepare_digits(_padded(marked)), prepare_digits(_padded(Image.fromarray(plain))))


def _printed_with_symbol(before, symbol, after, face, size, drawn):
    """before, symbol and after printed in a row (the symbol left blank unless drawn), on a margin of
    paper: the digits lie where they lie with the symbol."""
    font = _font(face, size)
    width = int(font.getlength(before + symbol + after)) + 2 * size
    image = Image.new("L", (width, 2 * size), 255)
    pen = ImageDraw.Draw(image)
    x = size
    for text, ink in ((before, True), (symbol, drawn), (after, True)):
        if ink:
            pen.text((x, size // 2), text, fill=0, font=font)
        x += font.getlength(text)
    return np.asarray(image)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.text("0123456789", min_size=3, max_size=4), st.sampled_from(["$", "+", "#", "(", ")", ","]),
       st.sampled_from(["DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf"]),
       st.integers(40, 80))
@example("1205", ",", "DejaVuSans-Bold.ttf", 60).via("a comma under a 7's bar, then taken in by the 7")
@example("4950", "+", "DejaVuSans.ttf", 50).via("a plus sign read as a 4")
def test_a_symbol_beside_printed_digits_is_not_read(digits, symbol, face, size):
    """A price ($45), a phone number (+49 ..., (030) ...), a house number (#12), a thousands' comma in
    print: the same digits as with the symbol left blank. Each was read as a digit ($ as 5, + and # as
    4, a bracket as 1, a comma beside a 7 made it a 3)."""
    at = {"$": 0, "+": 0, "#": 0, "(": 0, ")": len(digits), ",": len(digits) - 3 if len(digits) > 3 else 1}[symbol]
    if symbol == ",":
        digits = digits[:at] + "7" + digits[at + 1:]  # the comma right after a 7, under its bar
        at += 1
    marked, plain = (prepare_digits(_printed_with_symbol(digits[:at], symbol, digits[at:], face, size, drawn))
                     for drawn in (True, False))
    assume(len(plain) == len(digits))  # a thin serif 8 of 46 px is still taken for a box: not this test's matter
    assert len(marked) == len(plain)
    assert np.abs(np.subtract([d.box for d in marked], [d.box for d in plain])).max() <= 1
    _same_digits(marked, plain, tolerance=12.0)  # the symbol's ink moves the page's measures a little: a pixel's shift


def test_handwritten_shapes_like_symbols_are_digits():
    """A 4 crossed like a plus sign, smaller than its neighbours, and a 6 written in two strokes (a
    slanting stroke and a loop: a slash with one ring), in a row whose other digits line up as print's
    do: digits, all four."""
    image = strokes((620, 220), [
        [(60, 40), (60, 180)],  # a 1
        [(150, 90), (210, 90)], [(180, 60), (180, 150)], [(150, 90), (175, 60)],  # a 4 like a plus, with its arm
        [(300, 40), (260, 180)], [(300, 40), (300, 40)],  # a 6: its slanting stroke ...
        [(380, 40), (380, 180)],  # a 1
    ])
    ImageDraw.Draw(image).ellipse([262, 120, 322, 180], outline=0, width=9)  # ... and its loop, apart
    assert len(prepare_digits(image)) == 4


def test_a_small_broken_off_arm_high_up_is_part_of_its_digit():
    """A 4 whose arm, small, parted from its stem (benchmarks/real_world_set.py's `pens`, a thin pen),
    beside a tall 1: a mark as small as punctuation, but higher than the row's middle, so no period
    nor comma: it joins the 4."""
    image = strokes((300, 240), [[(60, 40), (60, 200)], [(200, 40), (200, 200)], [(165, 60), (145, 110), (172, 112)]])
    digits = prepare_digits(image)
    assert len(digits) == 2
    assert digits[1].box[0] <= 145


@pytest.mark.parametrize(("tail_end", "tail_width"), [(295, 5), (300, 4), (320, 3), (310, 9)])
def test_a_2_whose_long_tail_makes_it_wider_than_tall_is_one_digit(tail_end, tail_width):
    """A 2 whose bottom stroke runs on to the right, thinner than the rest (as glare leaves it), beside a
    1: two digits. Split at the tail's thin columns, the tail would read as a digit of its own."""
    image = strokes((460, 220), [[(50, 45), (50, 170)], [(135, 70), (165, 45), (205, 50), (215, 85), (140, 165)]])
    ImageDraw.Draw(image).line([(140, 165), (tail_end, 168)], fill=0, width=tail_width)
    digits = prepare_digits(image)
    assert len(digits) == 2
    assert digits[1].box[2] >= tail_end - 5  # the tail is the 2's


def test_a_thick_frame_touching_the_edge_is_not_ink_but_a_tightly_cropped_stroke_is():
    frame = strokes((300, 300), [[(150, 60), (150, 240)]])
    framed = np.asarray(frame).copy()
    framed[:, :40] = 0  # a dark band along the left edge, 40 px thick; strokes are 9
    digits = prepare_digits(Image.fromarray(framed))
    assert len(digits) == 1 and digits[0].box[0] > 100
    cropped = strokes((60, 200), [[(30, 0), (30, 199)]])  # a 1 touching the top and bottom edges
    assert len(prepare_digits(cropped)) == 1


@pytest.mark.slow
def test_photographed_numbers_are_cut_into_the_right_count_of_digits(mnist_test_digits):
    """Numbers of 2-4 held-out MNIST digits, apart or touching, clean or photographed on grey paper
    (benchmarks/real_world_set.py): the right number of digits in nearly every one."""
    wrong = _wrong_counts("number", mnist_test_digits[0], fewest=2)
    assert wrong <= 2, f"{wrong} of 40 numbers cut into the wrong count of digits"


def _wrong_counts(category: str, digits: np.ndarray, fewest: int) -> int:
    """How many of 40 numbers of fewest-4 held-out digits, drawn by benchmarks/real_world_set.py's
    function of that name, prepare_digits cuts into the wrong count of digits."""
    draw = getattr(real_world_set, category)
    rng = np.random.default_rng(7)
    wrong = 0
    for _ in range(40):
        chosen = [digits[i] for i in rng.choice(len(digits), size=int(rng.integers(fewest, 5)), replace=False)]
        wrong += len(prepare_digits(draw(rng, chosen))) != len(chosen)
    return wrong


@pytest.mark.parametrize("char", "8014")
def test_a_tight_crop_of_a_bold_digit_is_read_as_with_a_margin(char):
    font = _font("DejaVuSans-Bold.ttf", 120)
    glyph = Image.new("L", (100, 150), 255)
    ImageDraw.Draw(glyph).text((0, -10), char, fill=0, font=font)
    page = np.asarray(glyph)
    rows, cols = np.flatnonzero((page < 128).any(axis=1)), np.flatnonzero((page < 128).any(axis=0))
    crop = page[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    assert (crop < 128).mean() > 0.5  # more ink than paper
    prepared = prepare(Image.fromarray(crop))
    assert prepared.inverted  # the white border is the paper, though the black covers most of the image
    padded = prepare(Image.fromarray(np.pad(crop, 40, constant_values=255)))
    assert np.abs(prepared.pixels.astype(int) - padded.pixels.astype(int)).mean() < 3  # strokes not taken for shadow


@pytest.mark.parametrize(("seed", "text"), [(316, "94"), (387, "343")])
def test_light_left_at_the_edge_of_a_photo_is_not_read_as_a_digit(seed, text):
    """Photographed print (benchmarks/real_world_set.py) where the background estimate leaves a band
    of the shadowed paper's edge, far fainter than the ink: it was read as one more digit ("343"
    as 4 digits) or joined the number into one ("94" as 1)."""
    rng = np.random.default_rng(seed)
    assert "".join(str(d) for d in rng.integers(0, 10, int(rng.integers(2, 6)))) == text
    font = FONTS / "DejaVuSans.ttf"
    image = np.asarray(real_world_set.printed_number(rng, font, text).convert("L"))
    assert len(prepare_digits(image)) == len(text)


def test_ink_as_dark_as_the_digits_at_the_edge_is_still_read():
    """A stroke cropped at the image's edge is as dark as the others: it stays a digit."""
    rng = np.random.default_rng(0)
    image = np.full((120, 320), 170.0) + rng.normal(0, 3, (120, 320))
    image[:, :8] = 40  # a 1 cropped at the left edge
    image[25:95, 140:150] = 40  # a 1
    ys, xs = np.ogrid[:120, :320]
    image[np.abs(np.hypot((ys - 60) / 35, (xs - 230) / 22) - 1) < 0.2] = 40  # a 0
    digits = prepare_digits(np.clip(image, 0, 255).astype(np.uint8))
    assert len(digits) == 3 and digits[0].box[0] == 0


def _padded(image: Image.Image, margin: int = 60) -> np.ndarray:
    return np.pad(np.asarray(image), margin, constant_values=255)


def _ink_extent(page: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.flatnonzero((page < 128).any(axis=1)), np.flatnonzero((page < 128).any(axis=0))


def _same_digits(got, expected, tolerance=6.0):
    assert len(got) == len(expected)
    differences = [float(np.abs(a.pixels.astype(int) - b.pixels.astype(int)).mean()) for a, b in zip(got, expected)]
    assert max(differences) < tolerance, differences


@settings(max_examples=30, deadline=None)
@given(st.text("0123456789", min_size=2, max_size=4), st.integers(4, 30), st.integers(3, 40), st.integers(2, 9),
       st.integers(0, 40), st.booleans())
@example("11", 4, 6, 3, 0, False).via("narrow digits close together: the line is shorter than 1.5 digit heights")
@example("71", 6, 10, 4, 2, True).via("the same, a line over them")
def test_a_line_under_or_over_a_number_is_not_read(text, gap, distance, thickness, overhang, over):
    """An underline (or a line above), apart from the digits, as long as the number or longer: the same
    digits as without it."""
    plain = _padded(_number(text, gap))
    rows, cols = _ink_extent(plain)
    ruled = plain.copy()
    top = rows[0] - distance - thickness if over else rows[-1] + distance
    ruled[top : top + thickness, cols[0] - overhang : cols[-1] + 1 + overhang] = 0
    _same_digits(prepare_digits(ruled), prepare_digits(plain))


@settings(max_examples=30, deadline=None)
@given(st.sampled_from("0123456789"), st.integers(7, 30), st.integers(2, 9), st.integers(20, 40), st.booleans())
def test_a_line_under_one_digit_once_or_twice_is_not_read(digit, distance, thickness, overhang, twice):
    """An underline apart from a single bold digit (about 65 pixels tall, strokes 10 wide), a tenth of
    its height or more below it and past it on both sides by 20 pixels or more (a straight run is
    looked for only where it is six strokes long), once or twice: the same digit as without it. A line had to span two digits or be 1.5 times as long as they are tall: a single
    underlined digit kept its line (benchmarks/real_world_set.py's `ruled`: a 7 read as 1, a 9 as 8)."""
    plain = _padded(_number(digit, 0))
    rows, cols = _ink_extent(plain)
    ruled = plain.copy()
    for top in [rows[-1] + distance] + ([rows[-1] + 2 * distance + thickness] if twice else []):
        ruled[top : top + thickness, cols[0] - overhang : cols[-1] + 1 + overhang] = 0
    _same_digits(prepare_digits(ruled), prepare_digits(plain))


@pytest.mark.parametrize("face", ["DejaVuSans.ttf", "DejaVuSerif.ttf"])
@pytest.mark.parametrize("gap", [4, 8])
def test_the_base_of_a_2_broken_off_is_no_underline(face, gap):
    """A 2 whose base has broken off (a pen lifted, worn print) has a straight line on its own under
    the rest, as wide as it, but not past it on both sides: it stays. Without that condition it went,
    and the 2 read as 7."""
    font = _font(face, 90)
    glyph = Image.new("L", (120, 150), 255)
    ImageDraw.Draw(glyph).text((15, 10), "2", fill=0, font=font)
    page = np.asarray(glyph).copy()
    ink = page < 128
    rows, cols = _ink_extent(page)
    wide = [r for r in rows if ink[r].sum() > 0.6 * (cols[-1] - cols[0])]
    base_top = min(r for r in wide if all(q in wide for q in range(r, rows[-1] + 1)))
    page[base_top - gap : base_top] = 255
    mask = page < 128
    assert (without_rulings(mask) == mask).all()


@pytest.mark.parametrize("text", ["305", "2026"])
def test_an_underline_touching_the_digits_a_strike_through_or_ruled_paper_is_not_read(text):
    plain = _padded(_number(text, 20))
    rows, cols = _ink_extent(plain)
    underlined, struck = plain.copy(), plain.copy()
    underlined[rows[-1] + 1 : rows[-1] + 7, cols[0] - 10 : cols[-1] + 10] = 0  # the digits stand on it
    middle = (rows[0] + rows[-1]) // 2
    struck[middle : middle + 4, cols[0] - 25 : cols[-1] + 25] = 0  # drawn across, past the number
    notebook = plain.copy()  # ruled paper: lines across the whole page, one under the digits, one through them
    for y in (rows[-1] + 1, middle, middle - (rows[-1] - middle + 20)):
        notebook[y : y + 3, :] = 0
    expected = prepare_digits(plain)
    _same_digits(prepare_digits(underlined), expected, tolerance=10.0)  # a round bottom's last row is the line's
    _same_digits(prepare_digits(struck), expected, tolerance=12.0)  # the strokes it crossed keep the crossing
    _same_digits(prepare_digits(notebook), expected, tolerance=12.0)


@pytest.mark.parametrize("angle", [-6.0, -3.0, 3.0, 6.0])
def test_ruled_paper_photographed_turned_a_few_degrees_is_read_without_its_lines(angle):
    """Ruled paper under a number, its lines 3 px thick, turned a few degrees: each line falls more
    across the run looked for than it is thick, so no straight run was found, and the line through the
    digits joined them."""
    plain = _padded(_number("3052", 20))
    rows, cols = _ink_extent(plain)
    ruled = plain.copy()
    middle = (rows[0] + rows[-1]) // 2
    for y in (rows[-1] + 1, middle, middle - (rows[-1] - middle + 20)):
        ruled[y : y + 3, :] = 0
    turned = [np.asarray(Image.fromarray(page).rotate(angle, Image.Resampling.BICUBIC, expand=True, fillcolor=255))
              for page in (plain, ruled)]
    _same_digits(prepare_digits(turned[1]), prepare_digits(turned[0]), tolerance=12.0)


@settings(max_examples=40, deadline=None)
@given(st.floats(1.5, 7.5), st.sampled_from([-1, 1]), st.integers(1, 4), st.integers(150, 400), st.integers(0, 3))
def test_the_turn_of_a_page_s_lines_is_measured_and_their_runs_follow_it(degrees, sign, thickness, length, blobs):
    """A straight line turned 1.5-7.5 degrees either way, with blobs of ink (digits) above it: _skews
    measures its slope to within a step (half a degree), and the straight runs at the slope it gives
    cover the line; the same line level is not turned."""
    from digitnet.imageprep import lines

    slope = sign * math.tan(math.radians(degrees))
    shape = (int(abs(slope) * length) + 120, length + 40)
    columns = np.arange(20, 20 + length)
    line_rows = np.rint((60 if slope > 0 else shape[0] - 60) + slope * (columns - 20)).astype(int)
    ink = np.zeros(shape, dtype=bool)
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    for x in np.random.default_rng(blobs).integers(20, length - 20, blobs):
        ink |= (yy - 15) ** 2 + (xx - x - 15) ** 2 < 15**2
    line, level = np.zeros(shape, dtype=bool), ink.copy()
    for k in range(thickness):
        line[line_rows + k, columns] = True
        level[40 + k, columns] = True
    turned = ink | line
    run = 2 * (length // 8) + 1  # 37-101 px: six strokes of digits about 60-170 px tall
    found, _ = lines._skews(turned, run)
    if abs(slope) * length > 2 * thickness:  # (a thick line turned less is as much ink on one level line)
        # as much ink lies along a thick line at any turn within its thickness over its length
        assert abs(math.degrees(math.atan(found)) - sign * degrees) <= 0.5 + math.degrees(thickness / length)
    assert lines._straight_runs(turned, run, axis=1, slope=found)[line].mean() >= 0.9
    assert lines._skews(level, run) == (0.0, 0.0)


def _boxed(digits28: list[np.ndarray], side=110, gap=30, touching=False, comb=False, line=2, shade=0
           ) -> tuple[np.ndarray, np.ndarray]:
    """MNIST digits drawn black on white in a row, without and with a box (lines line px wide, of grey
    level shade) round each one; comb: the boxes share their sides, as a form's row of boxes does."""
    step = side + (0 if comb else gap)
    page = np.full((side + 80, 40 + step * len(digits28) + 40), 255, np.uint8)
    for k, digit in enumerate(digits28):
        big = np.asarray(Image.fromarray(255 - digit).resize((side, side), Image.Resampling.BICUBIC))
        top, left = 40, 40 + k * step
        np.minimum(page[top : top + side, left : left + side], big, out=page[top : top + side, left : left + side])
    boxed = page.copy()
    inset = -8 if touching else 4  # touching: the box cuts into the digits' 28x28 field, where their ink is
    for k in range(len(digits28)):
        left, right = 40 + k * step - inset, 40 + k * step + side + inset
        y0, y1 = 40 - inset, 40 + side + inset
        boxed[y0 : y0 + line, left:right] = np.minimum(boxed[y0 : y0 + line, left:right], shade)
        boxed[y1 - line : y1, left:right] = np.minimum(boxed[y1 - line : y1, left:right], shade)
        boxed[y0:y1, left : left + line] = np.minimum(boxed[y0:y1, left : left + line], shade)
        boxed[y0:y1, right - line : right] = np.minimum(boxed[y0:y1, right - line : right], shade)
    return page, boxed


@pytest.mark.parametrize(("touching", "comb", "line", "shade"),
                         [(False, False, 2, 0), (False, True, 2, 0), (True, False, 2, 0), (False, True, 1, 110)],
                         ids=["apart", "comb", "touching", "thin-grey-comb"])
def test_digits_written_in_boxes_are_read_without_the_boxes(mnist_test_digits, touching, comb, line, shade):
    digits, _ = mnist_test_digits
    for start in range(0, 12, 3):
        plain, boxed = _boxed(list(digits[start : start + 3]), touching=touching, comb=comb, line=line, shade=shade)
        _same_digits(prepare_digits(boxed), prepare_digits(plain), tolerance=10.0 if touching else 6.0)


@pytest.mark.parametrize("angle", [-5.0, -2.5, 2.5, 5.0])
def test_a_row_of_boxes_photographed_turned_a_few_degrees_is_read_without_the_boxes(mnist_test_digits, angle):
    """A form's row of boxes turned a few degrees: each side is shorter than the row is tall by the row's
    width times the turn, so no side reached from the row's top to its bottom and the boxes stayed (their
    dividers read as 1s); turned 5 degrees, a thin line's straight runs broke every few pixels."""
    digits, _ = mnist_test_digits
    for start in range(0, 12, 3):
        plain, boxed = _boxed(list(digits[start : start + 3]), comb=True)
        turned = [np.asarray(Image.fromarray(page).rotate(angle, Image.Resampling.BICUBIC, expand=True, fillcolor=255))
                  for page in (plain, boxed)]
        _same_digits(prepare_digits(turned[1]), prepare_digits(turned[0]), tolerance=8.0)


@pytest.mark.slow
@pytest.mark.parametrize(("category", "most_wrong"), [("boxed", 4), ("ruled", 3), ("turned_form", 3)])
def test_ruled_and_boxed_numbers_are_cut_into_the_right_count_of_digits(mnist_test_digits, category, most_wrong):
    """40 numbers of 1-4 held-out MNIST digits as benchmarks/real_world_set.py draws them (underlined,
    on ruled paper, in boxes; clean or photographed; in boxes or on ruled paper photographed turned 1-6
    degrees): the right number of digits in nearly every one.
    A box's thin lines, smoothed, fall partly below the ink's threshold; what is left of them (a row
    of boxes' dividers, where two sides meet) is found with the fainter ink (9 of 40 boxed numbers
    came out with a wrong count without it)."""
    wrong = _wrong_counts(category, mnist_test_digits[0], fewest=1)
    assert wrong <= most_wrong, f"{wrong} of 40 {category} numbers cut into the wrong count of digits"


@pytest.mark.parametrize("lines", [
    [[(100, 40), (100, 200)]],  # a 1: a straight vertical stroke
    [[(50, 40), (160, 40), (90, 200)]],  # a 7 with a ruler-straight bar
    [[(60, 80), (100, 40), (150, 80), (60, 200), (200, 200)]],  # a 2 with a base wider than it is tall... nearly
    [[(130, 40), (50, 150), (170, 150)], [(130, 40), (130, 210)]],  # a 4: its bar crosses the stem
    [[(50, 40), (160, 40), (160, 200), (50, 200), (50, 40)]],  # a square 0: a box with nothing inside
    [[(50, 40), (160, 40), (160, 200), (50, 200), (50, 40)], [(50, 120), (160, 120)]],  # an LCD-style 8
])
def test_straight_strokes_of_a_digit_stay(lines):
    image = np.asarray(strokes((220, 250), lines))
    kept = prepare(image).pixels
    assert (kept > 0).sum() > 0
    _assert_no_line_found(image)


def _assert_no_line_found(image) -> None:
    """Every pixel of the image's ink stays, whether lines are looked for in its ink or its fainter ink too."""
    intensity, mask, _ = ink_map(np.asarray(image, dtype=np.float32))
    np.testing.assert_array_equal(without_rulings(mask), mask)
    np.testing.assert_array_equal(without_rulings(mask, intensity), mask)


@pytest.mark.parametrize("text", ["222", "777", "444", "5555", "2022"])
@pytest.mark.parametrize("gap", [0, -8])
def test_bars_of_touching_printed_digits_are_not_taken_for_a_line(text, gap):
    """Touching printed digits join their bases or bars into one straight line as long as a ruling;
    it ends where the digits do, and stays."""
    _assert_no_line_found(np.pad(np.asarray(_number(text, gap)), 30, constant_values=255))


@pytest.mark.parametrize(("face", "size", "text"), [("DejaVuSans.ttf", 24, "8"), ("DejaVuSerif.ttf", 40, "8"),
                                                    ("DejaVuSans-Oblique.ttf", 30, "0"), ("DejaVuSans.ttf", 30, "0"),
                                                    ("cmr10.ttf", 60, "8"), ("cmtt10.ttf", 70, "8"),
                                                    ("DejaVuSans.ttf", 54, "18"), ("DejaVuSans.ttf", 60, "808"),
                                                    ("DejaVuSansMono.ttf", 51, "3845"), ("cmss10.ttf", 36, "3845")])
def test_a_printed_8_or_0_is_not_taken_for_a_box(face, size, text):
    """At a few strokes' size, the arcs of a thin 8 or 0 are made of runs of ink nearly as straight as a
    box's sides, with the rest of the glyph inside them: they are not straight enough to be a box. In a
    bold 8 a little larger, the inner edges of its loops are straight and its top and bottom flat: a
    box but for the rest of its strokes beside its lines; in a thin one, a box with nothing inside as
    tall as a digit."""
    font = _font(face, size)
    image = Image.new("L", (int(font.getlength(text)) + size, size * 2), 255)
    ImageDraw.Draw(image).text((size // 3, size // 4), text, fill=0, font=font)
    _assert_no_line_found(image)


def _on_squared_paper(digits28: list[np.ndarray], side: int, gap: int, offset: int) -> np.ndarray:
    """Digits in dark ink on off-white squared paper: a light grey grid every 0.3 of a digit's side."""
    pad, spacing = 20, int(side * 0.3)
    ink = np.zeros((2 * pad + side, 2 * pad + len(digits28) * side + (len(digits28) - 1) * gap))
    for k, digit in enumerate(digits28):
        x0 = pad + k * (side + gap)
        ink[pad : pad + side, x0 : x0 + side] = np.asarray(
            Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC)) / 255
    paper = np.full(ink.shape, 243.0)
    paper[offset % spacing :: spacing, :] = paper[:, offset % spacing :: spacing] = 187
    return (paper * (1 - ink) + 22 * ink).astype(np.uint8)


@pytest.mark.slow
def test_digits_on_light_squared_paper_are_cut_into_the_right_count(mnist_test_digits):
    """The grid of squared paper is faint ink where boxes are looked for, but it is a grid, not a box:
    the digits' strokes it touches are not taken with it (6 of 40 came out with a wrong count when
    grids counted as boxes)."""
    digits, _ = mnist_test_digits
    rng = np.random.default_rng(3)
    wrong = 0
    for _ in range(40):
        chosen = [digits[i] for i in rng.integers(0, len(digits), int(rng.integers(1, 4)))]
        side = int(rng.integers(40, 80))
        page = _on_squared_paper(chosen, side, int(rng.integers(5, 20)), int(rng.integers(0, 20)))
        wrong += len(prepare_digits(page)) != len(chosen)
    assert wrong <= 2, f"{wrong} of 40 numbers on squared paper cut into the wrong count of digits"


@settings(max_examples=80, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 50), st.integers(1, 50)), elements=st.floats(0, 1, width=32)),
       st.integers(1, 30))
def test_thickening_by_a_disk_is_scipys_dilation_done_faster(ink, radius):
    """The disk dilations that thicken thin digits, done as running maxima and a distance transform
    (a page of text took 15 s over scipy's own), give scipy's pixels wherever the disk fits in the
    image (where it does not, scipy's result varied from call to call here)."""
    from digitnet.imageprep.fitting import _dilated_by_disk, _disk

    dilated = _dilated_by_disk(ink, radius)
    np.testing.assert_array_equal(dilated, _dilated_by_disk(ink.copy(), radius))
    if radius < min(ink.shape):
        np.testing.assert_array_equal(dilated, ndimage.grey_dilation(ink, footprint=_disk(radius)))
    mask = ink > 0.9
    if mask.any():
        np.testing.assert_array_equal(ndimage.distance_transform_edt(~mask) <= radius,
                                      ndimage.binary_dilation(mask, structure=_disk(radius)))


def test_an_image_of_nothing_but_lines_is_an_image_error():
    page = np.full((200, 300), 255, np.uint8)
    page[50:53, :] = page[120:123, :] = 0  # two lines of ruled paper, nothing written
    for read in (prepare_digits, prepare):
        with pytest.raises(ImageError, match="no digit found"):
            read(page)


def _number_ink(digits28: list[np.ndarray], side: int = 90, seed: int = 0) -> np.ndarray:
    """Held-out MNIST digits side by side (benchmarks/real_world_set.py), ink in 0..1, with margins."""
    return np.pad(real_world_set._number_row(np.random.default_rng(seed), digits28, side), side // 2)


def _photographed(ink: np.ndarray, light: np.ndarray | None = None, darkness: float = 0.7,
                  glare: np.ndarray | None = None, paper: float = 170.0) -> Image.Image:
    """Ink on paper (grey, level 170, unless told), under light (a factor per pixel, 1 where it is
    even), with glare (grey levels added: light reflected off the paper and the ink alike)."""
    page = paper * (1 - darkness * ink) * (1.0 if light is None else light) + (0.0 if glare is None else glare)
    grain = np.random.default_rng(1).normal(0, 3, ink.shape)
    return Image.fromarray(np.clip(page + grain, 0, 255).astype(np.uint8))


# The properties of light draw held-out MNIST digits at random, and now and then a run meets a digit
# that one light reads otherwise than another (seventeenth session: a sliver kept or dropped, fixed and
# pinned; left, see docs/real-world.md: two very bold 3s under a spot in the middle, `[89, 89]`, read
# as light ink, and a 6 whose top stroke parts from it under glare, `[0, 1140]`). So CI runs a fixed
# sample and repeats itself; to explore, run them with derandomize=False and --hypothesis-seed.
LIGHT_SAMPLE = {"deadline": None, "derandomize": True}


def _taller_than_wide(digits28: np.ndarray, picks: list[int]) -> list[np.ndarray]:
    """The picked digits among those taller than wide, each without the slivers of its neighbours on
    the form that MNIST's crops hold. Wider digits side by side are cut at their thinnest column or
    not, and a sliver is kept as part of the digit or dropped as a speck, choices any change in the
    strokes' contrast can tip whatever the light: the tests of light leave them out (a sliver beside a
    4 under glare came out at 7.1% of the largest digit's ink, 5.9% under even light, on either side
    of SPECK_SHARE)."""
    tall = [d for d in digits28 if np.ptp(np.flatnonzero(d.any(axis=0))) < np.ptp(np.flatnonzero(d.any(axis=1)))]
    return [_largest_piece(tall[i % len(tall)]) for i in picks]


def _largest_piece(digit28: np.ndarray) -> np.ndarray:
    """The digit's largest piece of ink, with the faint pixels nearer to it than to any other piece."""
    from scipy import ndimage

    labels, _ = ndimage.label(digit28 > 64, structure=np.ones((3, 3)))
    largest = np.argmax(np.bincount(labels.ravel())[1:]) + 1
    rows, cols = ndimage.distance_transform_edt(labels == 0, return_distances=False, return_indices=True)
    return np.where(labels[rows, cols] == largest, digit28, 0)


def _same_shapes(got, expected, least_overlap=0.5):
    """The same count of digits, each with nearly the same inked pixels (intersection over union);
    light changes how dark a stroke comes out, not where it is."""
    assert len(got) == len(expected)
    overlaps = [float(((a.pixels > 64) & (b.pixels > 64)).sum() / ((a.pixels > 64) | (b.pixels > 64)).sum())
                for a, b in zip(got, expected)]
    assert min(overlaps) >= least_overlap, overlaps


@settings(max_examples=25, **LIGHT_SAMPLE)
@given(st.lists(st.integers(0, 1999), min_size=2, max_size=4), st.floats(0.3, 0.7), st.floats(0.2, 0.8),
       st.floats(0.15, 0.4), st.floats(50, 110))
@example([3, 10], 0.5, 0.5, 0.2, 90).via("a spot on the number's middle: read as light ink on dark paper before")
@example([89, 0], 0.5, 0.3125, 0.15625, 50).via("a bold 3: a paper's scale ended by the spot's light counts ate its strokes")
@example([0, 242], 0.5, 0.25, 0.25, 50).via("a 4 with a sliver of its neighbour, kept under glare, a speck in even light")
def test_a_glare_spot_does_not_change_the_digits(mnist_test_digits, chosen, cy, cx, radius, strength):
    """Glare (a bright spot over part of the number, up to 110 grey levels brighter, in a photo with
    darker corners) is no ink: the same dark digits as under even light. The ink's side was judged by
    how far each side departs from the median, and the spot outweighed the ink."""
    ink = _number_ink(_taller_than_wide(mnist_test_digits[0], chosen))
    even = prepare_digits(_photographed(ink))
    assume(len(even) == len(chosen))
    spot = real_world_set.glare_spot(ink.shape, (cy * ink.shape[0], cx * ink.shape[1]), radius * ink.shape[1], strength)
    lit = prepare_digits(_photographed(ink, real_world_set.darker_corners(ink.shape), glare=spot))
    assert all(d.inverted for d in lit)
    _same_shapes(lit, even)


@settings(max_examples=25, **LIGHT_SAMPLE)
@given(st.lists(st.integers(0, 1999), min_size=2, max_size=4), st.floats(0, 2 * np.pi), st.floats(-0.3, 0.3),
       st.floats(0.3, 0.55))
@example([0, 4, 7], 0.8, 0.0, 0.5).via("the edge meets the image's edge: windows inside it do not fit in the corner")
@example([0, 1], 1.0, 0.0, 0.5).via("the edge across the number: the paper's level over a quarter image left it as ink")
@example([0, 0], 0.5, 0.1875, 0.5).via("a digit half in shadow: its shaded half came out fainter")
def test_the_hard_edge_of_a_shadow_does_not_change_the_digits(mnist_test_digits, chosen, angle, offset, depth):
    """A shadow (a phone's, a hand's) with a sharp edge across the number: the same digits as under
    even light. The paper's level was estimated over a quarter of the image, so the shadow's edge
    was left as a band of ink joined to the digits."""
    ink = _number_ink(_taller_than_wide(mnist_test_digits[0], chosen))
    even = prepare_digits(_photographed(ink))
    assume(len(even) == len(chosen))
    shadow = real_world_set.shadow_edge(ink.shape, angle, offset, depth, softness=1.5)
    _same_shapes(prepare_digits(_photographed(ink, shadow)), even)


@settings(max_examples=25, **LIGHT_SAMPLE)
@given(st.lists(st.integers(0, 1999), min_size=1, max_size=3), st.floats(40, 100), st.floats(6, 12),
       st.integers(0, 2**16))
def test_a_grainy_photo_in_dim_light_is_read_without_its_grain(mnist_test_digits, chosen, paper, grain, seed):
    """Paper 40-100 grey levels bright, the ink 70% darker, grain of 6-12 levels (a dim room, a small
    sensor): a pixel-wide grain outweighed the strokes and the light side was taken for the ink, or
    specks of it were read as digits. The image is smoothed first where it is that grainy."""
    digits = [mnist_test_digits[0][i] for i in chosen]
    page = paper * (1 - 0.7 * _number_ink(digits, side=70))
    page += np.random.default_rng(seed).normal(0, grain, page.shape)
    read = prepare_digits(Image.fromarray(np.clip(page, 0, 255).astype(np.uint8)))
    assert len(read) == len(chosen) and all(d.inverted for d in read)


@pytest.mark.parametrize("noise", [0.0, 2.0, 5.0, 10.0])
def test_grain_is_measured_by_the_noise_not_by_strokes_or_lines(noise):
    """_grain: about the noise's standard deviation on flat paper, whatever thin lines (ruled paper
    every 8 pixels) and small print cover."""
    from digitnet.imageprep.ink import _grain

    page = np.full((200, 300), 220.0)
    page[::8] = 120.0
    page[40:60] = np.asarray(_small_print("0123456789", "DejaVuSans.ttf", 14)[0].resize((300, 20)), dtype=float)
    page += np.random.default_rng(0).normal(0, noise, page.shape)
    assert abs(_grain(page) - noise) < 0.1 * noise + 0.5


def test_faint_pencil_is_read_as_dark_ink(mnist_test_digits):
    """Pencil: ink a fifth darker than the paper, under a light gradient."""
    ink = _number_ink(list(mnist_test_digits[0][20:23]))
    gradient = np.linspace(0.85, 1.15, ink.shape[1])[None, :]
    faint = prepare_digits(_photographed(ink, gradient, darkness=0.2))
    assert all(d.inverted for d in faint)
    _same_shapes(faint, prepare_digits(_photographed(ink)))


def _page_with(ink: np.ndarray, size: tuple[int, int], at: tuple[int, int]) -> np.ndarray:
    page = np.zeros(size, np.float32)
    page[at[0] : at[0] + ink.shape[0], at[1] : at[1] + ink.shape[1]] = ink
    return page


_STORED = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
           4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90,
           7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270}  # upright -> as stored under that tag


def _stored_with_orientation(upright: Image.Image, orientation: int, fmt: str) -> bytes:
    stored = upright if _STORED[orientation] is None else upright.transpose(_STORED[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _png(stored, fmt, exif=exif.tobytes(), **({"quality": 92} if fmt == "JPEG" else {}))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_shows_the_image_upright(mnist_test_digits, orientation):
    upright = _photographed(_number_ink(list(mnist_test_digits[0][:3])))
    expected = prepare_digits(upright)
    got = prepare_digits(open_image(_stored_with_orientation(upright, orientation, "PNG")))
    _same_digits(got, expected, tolerance=1.0)
    assert [d.box for d in got] == [d.box for d in expected]


@pytest.mark.parametrize(("fmt", "size", "orientation"), [("PNG", (1800, 2400), 1), ("PNG", (1800, 2400), 6),
                                                          ("PNG", (2400, 1800), 7), ("JPEG", (3024, 4032), 1),
                                                          ("JPEG", (3024, 4032), 8)])
def test_a_small_number_in_a_large_photo_is_read_as_closely_as_a_crop_of_it(mnist_test_digits, fmt, size, orientation):
    """A number filling a small part of a phone's photo: reduced to the working size with the rest,
    its digits were 15 pixels tall, joined and misread. It is looked at again on its own: the same
    digits as in a photo of just that part, and boxes where it lies in the source's pixels."""
    ink = _number_ink(list(mnist_test_digits[0][30:33]), side=80)
    at = (size[0] // 3, size[1] // 2)
    page = _photographed(_page_with(ink, size, at))
    crop = page.crop((at[1], at[0], at[1] + ink.shape[1], at[0] + ink.shape[0]))
    expected = prepare_digits(crop)
    got = prepare_digits(open_image(_stored_with_orientation(page, orientation, fmt)))
    _same_digits(got, expected, tolerance=8.0)
    for a, b in zip(got, expected):
        assert np.abs(np.subtract(a.box, b.box) - [at[1], at[0], at[1], at[0]]).max() <= 3, (a.box, b.box)


@pytest.mark.parametrize("mark", [(1500, 300, 40, 40), (200, 2150, 500, 12), (1650, 900, 14, 600)],
                         ids=["a blot", "the paper's edge", "a fold"])
def test_a_small_number_in_a_large_photo_is_looked_at_closely_whatever_lies_far_from_it(mnist_test_digits, mark):
    """A phone's photo of a page holds more than the number: a blot, the paper's edge, a fold, far
    from it. The closer look took the box around all the ink, too large to enlarge the number: it
    was read at a few pixels a digit, its digits joined or misread, and the mark as one more."""
    ink = _number_ink(list(mnist_test_digits[0][30:33]), side=80)
    size, at = (1800, 2400), (700, 1100)
    page = _page_with(ink, size, at)
    top, left, height, width = mark
    page[top : top + height, left : left + width] = 1.0
    photo = _photographed(page)
    expected = prepare_digits(photo.crop((at[1], at[0], at[1] + ink.shape[1], at[0] + ink.shape[0])))
    _same_digits(prepare_digits(photo), expected, tolerance=8.0)


@settings(max_examples=15, **LIGHT_SAMPLE)
@given(st.lists(st.integers(0, 1999), min_size=1, max_size=3), st.integers(40, 90), st.floats(0, 1), st.floats(0, 1),
       st.floats(0, 2 * np.pi), st.floats(6, 24))
@example([261, 109, 298], 60, 0.8139, 0.4511, 3.7705, 24.0)
@example([85, 179, 236], 49, 0.8005, 0.8687, 0.5914, 24.0)
@example([625, 684, 897], 68, 0.7754, 0.8331, 1.8860, 24.0)
@example([128], 79, 0.4986, 0.5896, 0.1803, 24.0)
def test_a_small_number_on_a_white_page_in_uneven_light_is_read_alone(mnist_test_digits, chosen, side, down, across,
                                                                       angle, depth):
    """A phone's photo of a white page (paper of grey level 214 on average, so its edges count as clean
    paper) whose light falls off across it by up to 24 levels either way. The paper's level was capped
    at the edges' median, to keep a bold digit cropped tightly whole: the paper darker than that
    became a region of ink larger than the number, which then went unread or came out as several digits."""
    ink = _number_ink(_taller_than_wide(mnist_test_digits[0], chosen), side=side)
    size = (1200, 1600)
    at = (round(down * (size[0] - ink.shape[0])), round(across * (size[1] - ink.shape[1])))
    rows, cols = np.mgrid[0 : size[0], 0 : size[1]]
    slope = ((cols - size[1] / 2) * np.cos(angle) + (rows - size[0] / 2) * np.sin(angle)) / (size[1] / 2)
    light = 1 + depth / 214 * np.clip(slope, -1, 1)
    digits = prepare_digits(_photographed(_page_with(ink, size, at), light, paper=214))
    assert len(digits) == len(chosen)
    for digit in digits:
        left, top, right, bottom = digit.box
        assert at[1] - 3 <= left and right <= at[1] + ink.shape[1] + 3, (digit.box, at, ink.shape)
        assert at[0] - 3 <= top and bottom <= at[0] + ink.shape[0] + 3, (digit.box, at, ink.shape)


@pytest.mark.slow
@pytest.mark.parametrize(("category", "most_wrong"), [("lit", 4), ("phone", 3), ("table", 3)])
def test_numbers_under_uneven_light_or_small_in_a_photo_are_cut_into_the_right_count(mnist_test_digits, category,
                                                                                    most_wrong):
    """40 numbers of 1-4 held-out MNIST digits as benchmarks/real_world_set.py draws them: under glare,
    across a shadow's edge or in faint pencil (lit); 40-90 pixels tall in a 1600 x 1200 photo (phone);
    on a sheet lying on a white, grey or dark table, turned a few degrees (table: 1 wrong, 5 before a
    sheet darker than a white desk was told from it).
    Before the strokes' widths set the paper's scale, and before a closer look, many raised 'no digit
    found' or came out as a wrong count."""
    wrong = _wrong_counts(category, mnist_test_digits[0], fewest=1)
    assert wrong <= most_wrong, f"{wrong} of 40 {category} numbers cut into the wrong count of digits"


def _a_number(rng, digits: np.ndarray) -> list[np.ndarray]:
    """1-3 different held-out digits drawn by rng: a number as the seeded tests below draw it."""
    return [digits[i] for i in rng.choice(len(digits), size=int(rng.integers(1, 4)), replace=False)]


@pytest.mark.parametrize("seed", [5, 14, 52, 74, 58, 98])
def test_the_dark_corners_beside_a_tilted_sheet_are_not_read_as_ink(mnist_test_digits, seed):
    """Numbers under glare, across a shadow's edge or in pencil (benchmarks/real_world_set.py's `lit`),
    where the photo's darker corners meet the tilted sheet's edge: what the paper's level leaves of
    them there is nearly as strong as the ink but rises gently, and was read as a digit more (seeds
    5, 14, 52, 74) or joined the digits into one (58, 98)."""
    digits = mnist_test_digits[0]
    rng = np.random.default_rng(seed)
    chosen = _a_number(rng, digits)
    photo = real_world_set.lit(rng, chosen)
    read = prepare_digits(photo)
    assert len(read) == len(chosen)
    for left, top, right, bottom in (d.box for d in read):
        assert min(left, top, photo.width - right, photo.height - bottom) >= 3, (left, top, right, bottom)


@pytest.mark.parametrize("seed", [3, 4, 51, 109, 129, 153, 169, 193, 233, 330])
def test_the_dark_corners_of_a_sheet_with_the_desk_between_them_and_the_edge_are_not_read(mnist_test_digits, seed):
    """Numbers as `lit` draws them whose sheet, tilted, leaves a strip of the lighter desk along the
    photo's edges: what the background estimate leaves of the sheet's darker corners lies a few
    pixels in from the edge, not at it, fainter and softer than the ink, and was read as a digit
    more or joined to one (these 10 of the first 400 seeds; none of them that was read right is
    read wrong now)."""
    digits = mnist_test_digits[0]
    rng = np.random.default_rng(seed)
    chosen = _a_number(rng, digits)
    assert len(prepare_digits(real_world_set.lit(rng, chosen))) == len(chosen)


@pytest.mark.parametrize("seed", [107, 114, 156, 352, 364])
def test_what_a_shadow_leaves_near_the_edge_as_a_blob_is_not_read(mnist_test_digits, seed):
    """Numbers as `lit` draws them where a shadow's hard edge runs into the photo's edge: in the
    narrow wedge between them the background estimate cannot follow the shadow, and leaves a solid
    triangle of light, a little fainter than the ink but as sharp. It is a blob, not a stroke (its area
    a few times its thickness squared), and was read as a digit more (these 5 of the first 400
    seeds; none of them that was read right is read wrong now)."""
    digits = mnist_test_digits[0]
    rng = np.random.default_rng(seed)
    chosen = _a_number(rng, digits)
    assert len(prepare_digits(real_world_set.lit(rng, chosen))) == len(chosen)


@pytest.mark.parametrize("seed", [2, 25, 95, 97, 104, 111])
def test_one_small_digit_in_a_large_photo_is_found_whichever_side_the_grain_favours(mnist_test_digits, seed):
    """One held-out digit 40-90 pixels tall in a 1600 x 1200 photo of a page (`phone`): the grain's
    thin structures can outweigh the digit's, and the light side was taken for the ink: nothing
    there, 'no digit found' (these 6 of the first 120 seeds). The other side is looked at then."""
    digits = mnist_test_digits[0]
    rng = np.random.default_rng(seed)
    assert len(prepare_digits(real_world_set.phone(rng, [digits[int(rng.integers(len(digits)))]]))) == 1


@pytest.mark.parametrize("inset", [0, 10], ids=["at-the-edge", "near-the-edge"])
def test_the_papers_edge_in_a_photo_is_not_read_as_a_digit(mnist_test_digits, inset):
    """A photo of a page shows what lies beyond the paper's edge (a table, the paper's torn or
    shadowed rim): a long dark band along the image's side, as thin and as dark as the strokes, at
    the edge or a few pixels from it. It is far longer than the digits are tall: the surroundings,
    not a 1."""
    ink = _number_ink(list(mnist_test_digits[0][40:43]), side=70)
    page = np.zeros((ink.shape[0] + 300, ink.shape[1] + 300), np.float32)
    page[150 : 150 + ink.shape[0], 150 : 150 + ink.shape[1]] = ink
    for y in range(inset, page.shape[0] - inset):  # a rim that wanders by a few pixels: no ruler-straight line
        right = page.shape[1] - inset - round(3 * np.sin(y / 9))
        page[y, right - 8 : right] = 1.0
    digits = prepare_digits(_photographed(page))
    _same_digits(digits, prepare_digits(_photographed(ink)), tolerance=8.0)


@st.composite
def _drawings(draw):
    """Dark strokes and dots on paper of one level (a canvas; also near-white and grey paper)."""
    height, width = draw(st.integers(16, 90)), draw(st.integers(16, 90))
    paper = draw(st.sampled_from([255.0, 250.0, 236.0]))
    image = Image.new("L", (width, height), int(paper))
    pen = ImageDraw.Draw(image)
    for _ in range(draw(st.integers(1, 4))):
        points = [(draw(st.integers(0, width - 1)), draw(st.integers(0, height - 1))) for _ in range(3)]
        pen.line(points, fill=draw(st.integers(0, 120)), width=draw(st.integers(1, 9)))
    return np.asarray(image, dtype=np.float32)


@settings(max_examples=80, deadline=None)
@given(_drawings())
def test_a_drawing_on_even_paper_skips_the_background_measurement_and_gets_its_result(gray):
    from digitnet.imageprep.ink import _ink_and_background, _measured_ink_and_background

    ink, paper, inverted, even = _ink_and_background(gray)
    assume(even)  # strokes along the whole border make the border's median ink: then it is measured
    measured_ink, background, measured_inverted = _measured_ink_and_background(gray)
    assert inverted and measured_inverted and np.ndim(paper) == 0
    assert np.array_equal(np.clip(ink - paper, 0, None), np.clip(measured_ink - background, 0, None))


def test_paper_lighter_anywhere_than_at_its_edges_is_measured():
    gray = np.full((60, 60), 240.0, dtype=np.float32)
    gray[20:40, 28:31] = 30.0  # a stroke
    gray[5:10, 5:10] = 255.0  # lighter than the paper at the edges: the paper is not even
    assert not _ink_and_background_even(gray)
    gray[5:10, 5:10] = 240.0
    assert _ink_and_background_even(gray)


def _ink_and_background_even(gray) -> bool:
    from digitnet.imageprep.ink import _ink_and_background

    return _ink_and_background(gray)[3]


@settings(max_examples=80, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 30), st.integers(1, 30))), st.integers(0, 12), st.integers(0, 12),
       st.integers(0, 12), st.integers(0, 12))
def test_stroke_width_depends_on_the_ink_alone_not_on_the_paper_around_it(mask, top, bottom, left, right):
    from scipy import ndimage

    from digitnet.imageprep.measures import stroke_width

    assume(mask.any())
    framed = np.pad(mask, ((top, bottom), (left, right)))
    distances = ndimage.distance_transform_edt(framed)  # the width's definition, over the whole array
    assert stroke_width(framed) == max(1.0, 4.0 * float(distances[framed].mean()) - 3.0)


def test_numbers_on_a_sheet_darker_than_the_white_desk_it_lies_on_are_read(mnist_test_digits, monkeypatch):
    """Numbers on a sheet photographed lying on a white desk (benchmarks/real_world_set.py's table,
    the desk brighter than the sheet's paper): the white at the edges is not the paper the ink lies
    on. All of the sheet, darker than that white, was ink: most came out as one digit, or many."""
    monkeypatch.setattr(real_world_set, "TABLES", ((225, 250),))
    digits, labels = mnist_test_digits
    rng = np.random.default_rng(11)
    wrong = 0
    for _ in range(16):
        chosen = rng.choice(len(digits), size=int(rng.integers(1, 5)), replace=False)
        wrong += len(prepare_digits(real_world_set.table(rng, [digits[i] for i in chosen]))) != len(chosen)
    assert wrong <= 2, f"{wrong} of 16 numbers on a white desk cut into the wrong count of digits"


@pytest.mark.parametrize("seed", [215, 311, 315])
def test_the_digits_on_the_lighter_part_of_a_light_sheet_on_a_white_desk_are_read(mnist_test_digits, seed):
    """A sheet on a desk (`table`) whose paper, lit unevenly, is nearly as light as the desk on one side:
    that side fell below the cut that finds the sheet, counted as desk, and the desk was painted over
    with the sheet's level, its digits with it (these 3 of the first 400 seeds lost digits or read as
    'no digit found'; none of them that was read right is read wrong now). The sheet is cut again
    halfway between its level and the desk's, and only what is lighter than the sheet is painted over."""
    digits = mnist_test_digits[0]
    rng = np.random.default_rng(seed)
    chosen = _a_number(rng, digits)
    assert len(prepare_digits(real_world_set.table(rng, chosen))) == len(chosen)


@pytest.mark.parametrize("seed", [1, 18, 27, 48, 58, 60, 65, 66, 70, 77])
def test_a_number_on_a_small_card_on_a_dark_desk_is_read_as_dark_ink(mnist_test_digits, seed):
    """A number on a small card lying on a grey desk or dark wood, photographed turned up to 30
    degrees (benchmarks/real_world_set.py's `cards`): the card, lighter than the desk and narrower
    than the photo, adds thin light structures of its own (its corners, its narrow ends), which
    outweighed the strokes' dark ones: all of the card was ink (these 10 of the first 80 seeds; none
    of them that was read right is read wrong now)."""
    digits = mnist_test_digits[0]
    rng = np.random.default_rng(seed)
    chosen = _a_number(rng, digits)
    read = prepare_digits(real_world_set.card(rng, chosen))
    assert [d.inverted for d in read] == [True] * len(chosen)


def test_a_photo_turned_with_its_corners_filled_dark_is_read_as_dark_ink(mnist_test_digits):
    """A photo of a number turned 18-25 degrees in an editor, the corners it uncovers filled dark red:
    a light sheet on a dark desk. Where a soft shadow darkens one side of the paper, the sheet cut
    halfway between the desk's level and its own lost that side, and its outline was no rectangle:
    the ink was taken to be light (seed 483 of 750). The outline is taken where the sheet is lighter
    than the desk by half as much."""
    digits = mnist_test_digits[0]
    rng = np.random.default_rng(483)
    chosen = _a_number(rng, digits)
    side = int(rng.integers(60, 120))
    ink = np.pad(real_world_set._number_row(rng, chosen, side), side // 2)
    angle = float(rng.choice([-1, 1]) * rng.uniform(18, 25))
    photo = real_world_set._ink_on_paper(rng, ink).rotate(angle, Image.Resampling.BICUBIC, expand=True,
                                                           fillcolor=(180, 0, 0))
    read = prepare_digits(photo)
    assert [d.inverted for d in read] == [True] * len(chosen)


@pytest.mark.parametrize("index", [13, 15, 97])
def test_a_light_digit_whose_loops_are_slits_is_not_taken_for_a_written_sheet(mnist_test_digits, index):
    """MNIST's own white-on-black digits, enlarged: their light strokes, whose loops' insides are long
    and narrow (a 6, two 8s), outweigh the dark side only a little, and the loops are dark marks as
    long as strokes inside a light region: what a written card on a desk shows. The region's outline
    is round, not a sheet's straight one."""
    image = Image.fromarray(mnist_test_digits[0][index]).resize((280, 280), Image.Resampling.BICUBIC)
    assert prepare(image).inverted is False


def _bold_light_digit(digit28: np.ndarray, boldness: int, margin: int) -> np.ndarray:
    """An MNIST digit enlarged to 200 pixels, its strokes thickened boldness pixels (a broad brush, a
    thick piece of chalk), white on a black canvas margin pixels wider all round."""
    big = np.asarray(Image.fromarray(digit28).resize((200, 200), Image.Resampling.BICUBIC))
    return np.pad(ndimage.grey_dilation(big, size=(boldness, boldness)), margin)


@settings(max_examples=30, **LIGHT_SAMPLE)
@given(st.integers(0, 1999), st.integers(9, 21), st.integers(0, 40))
@example(4, 15, 30).via("a bold 1: its black canvas was taken for the ink, the gaps beside the stroke for strokes")
def test_a_bold_light_digit_on_a_black_canvas_is_read_as_light_ink(mnist_test_digits, index, boldness, margin):
    """A broad white brush on a black canvas (MNIST's own colours): the black between bold strokes, a
    loop's inside narrowed to a slit, is thinner than the strokes; the canvas, black all round and
    the darkest of the image, is the paper. The digit is prepared as the same drawing in black on white."""
    light = _bold_light_digit(mnist_test_digits[0][index], boldness, margin)
    assume(light[0].max() < 128 and light[-1].max() < 128 and light[:, 0].max() < 128 and light[:, -1].max() < 128)
    got, dark = prepare(Image.fromarray(light)), prepare(Image.fromarray(255 - light))
    assert got.inverted is False and dark.inverted is True
    assert np.abs(got.pixels.astype(int) - dark.pixels.astype(int)).mean() < 8


@pytest.mark.parametrize("paper", [40, 70, 100])
def test_dark_digits_on_evenly_dark_paper_are_read_as_dark_ink(mnist_test_digits, paper):
    """A dim photo of a page, the paper evenly dark all round: the ink is darker still, so the border
    is not the darkest of the image, and not a black canvas."""
    digits = [mnist_test_digits[0][i] for i in (0, 1, 2)]
    ink = _number_ink(digits, side=90)
    page = paper * (1.0 - 0.8 * ink)
    assert all(d.inverted for d in prepare_digits(page.astype(np.uint8)))


def test_a_written_sheet_on_a_black_canvas_is_read_as_dark_ink(mnist_test_digits):
    """A scan of a page pasted on black (a dark viewer's window, a scanner's black lid): the border is
    black and the darkest, but a written light sheet shows, and its dark strokes are the ink."""
    digits = [mnist_test_digits[0][i] for i in (5, 6, 7)]
    sheet = 235.0 * (1.0 - 0.85 * _number_ink(digits, side=90))
    canvas = np.zeros((sheet.shape[0] + 120, sheet.shape[1] + 160))
    canvas[60:-60, 80:-80] = sheet
    read = prepare_digits(canvas.astype(np.uint8))
    assert len(read) == 3 and all(d.inverted for d in read)


@settings(max_examples=60, deadline=None)
@given(st.integers(20, 140), st.integers(20, 140), st.floats(0.0, 90.0), st.booleans())
def test_a_rectangle_turned_any_way_fills_its_smallest_rectangle_and_an_ellipse_a_quarter_pi(width, height, angle,
                                                                                             ellipse):
    from digitnet.imageprep.ink import _rectangle_fill

    image = Image.new("L", (320, 320))
    shape = ImageDraw.Draw(image).ellipse if ellipse else ImageDraw.Draw(image).rectangle
    shape((160 - width // 2, 160 - height // 2, 160 + width // 2, 160 + height // 2), fill=255)
    fill = _rectangle_fill(np.asarray(image.rotate(angle, Image.Resampling.BILINEAR)) > 127)
    if ellipse:
        assert abs(fill - math.pi / 4) < 0.05
    else:
        assert fill > 0.92


@settings(max_examples=150, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 40), st.integers(1, 40))))
@example(np.array([[0, 0, 0], [0, 255, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]], np.uint8))
@example(np.array([[0, 255, 255, 0]], np.uint8))
def test_any_image_is_judged_a_written_sheet_or_not_without_an_error(array):
    from digitnet.imageprep.ink import _written_light_sheet

    assert _written_light_sheet(array.astype(np.float32)) in (True, False)


@settings(max_examples=150, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 30), st.integers(1, 30))))
@example(np.array([[True]]))
@example(np.eye(5, dtype=bool))
def test_any_region_fills_a_share_of_its_smallest_rectangle(mask):
    from digitnet.imageprep.ink import _rectangle_fill

    assume(mask.any())
    assert 0.0 < _rectangle_fill(mask) <= 1.0


def test_a_bold_soft_drawing_over_a_quarter_of_the_canvas_is_not_taken_for_a_sheet():
    """Strokes with soft rims: what is darker than the paper lies, most of it, below the darkest ink,
    as a sheet's paper does; in from their rims the strokes are as dark as the ink."""
    from scipy import ndimage

    from digitnet.imageprep.ink import _clean_paper, _sheet_on_desk

    canvas = strokes((280, 280), [[(140, 40), (140, 240)], [(60, 140), (220, 140)], [(70, 60), (210, 220)]], width=40)
    gray = ndimage.gaussian_filter(np.asarray(canvas, dtype=np.float32), 6)
    assert (gray < 231).mean() > 0.25
    assert _sheet_on_desk(255.0 - gray, _clean_paper(255.0 - gray)) is None


@pytest.mark.parametrize("degrees", [-24, -20, 20, 24])
@pytest.mark.parametrize("first", [10, 100])
def test_a_number_photographed_turned_is_read_turned_back_towards_level(mnist_test_digits, first, degrees):
    """A number photographed with the camera turned 20-24 degrees (benchmarks/real_world_set.py's
    `turned`), past the 12 the models learned: its digits are turned back to within 8 degrees of
    level. Each field differed from the level number's by 21-43 grey levels a pixel on average
    before (by 7-13 turned 6 degrees, which stays as it is), 9-19 now."""
    from scipy import ndimage

    ink = _number_ink(list(mnist_test_digits[0][first : first + 3]), side=90)
    level = prepare_digits(_photographed(ink))
    turned = prepare_digits(_photographed(np.clip(ndimage.rotate(ink, degrees, order=1), 0, 1)))
    assert len(turned) == len(level)
    differences = [float(np.abs(a.pixels.astype(int) - b.pixels.astype(int)).mean()) for a, b in zip(turned, level)]
    assert np.mean(differences) < 15.0, differences


@pytest.mark.parametrize(("slant", "turn"), [(0.0, 0.0), (5.0, 0.0), (-8.0, 0.0), (20.0, 12.0), (-25.0, -17.0),
                                             (34.0, 26.0), (50.0, 0.0)])
def test_a_row_is_turned_by_its_slant_past_eight_degrees(slant, turn):
    """A row of digits' centres sloping slant degrees (> 0 falling to the right, rows growing
    downwards): up to 8 either way it is read as it stands (digits written up and down along a level
    row); past it, turned by the rest; past 35, it is no row (one digit stands above another)."""
    from digitnet.imageprep.pieces import row_turn

    xs = [10.0, 62.0, 118.0, 170.0]
    assert row_turn([(x, 50.0 + math.tan(math.radians(slant)) * x) for x in xs]) == pytest.approx(turn)
    assert row_turn([(xs[0], 50.0)]) == 0.0
    assert row_turn([(40.0, 10.0), (40.0, 90.0)]) == 0.0
