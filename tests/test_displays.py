"""Digits as displays and simple printers draw them. Dot-matrix print (a receipt, a ticket): the dots of
each digit are joined into strokes before the digits are cut apart (imageprep/dots.py); ink that is no
such print is left as it is. Seven segments (a meter, a clock): a 0, a box of four strokes, is no number
sign (imageprep/symbols.py). Both are in the printed digits the cnn recipe trains on (data/printed.py)."""

import numpy as np
import pytest
from conftest import strokes
from PIL import Image, ImageDraw, ImageFilter
from scipy import ndimage

from digitnet.data.printed import DISPLAY_STYLES, dot_matrix_image, glyph_bank, seven_segment_image
from digitnet.imageprep import prepare, prepare_digits
from digitnet.imageprep.dots import _row_pitch, joined_dots
from digitnet.settings import CLASSES


def dot_number(text: str, pitch: int, dot: float, blur: float = 0.0) -> Image.Image:
    image = dot_matrix_image(text, pitch, dot)
    return image.filter(ImageFilter.GaussianBlur(blur)) if blur else image


def _is_inked(image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    gray = np.asarray(image, dtype=np.float32)
    return gray < 128, 255 - gray


@pytest.mark.parametrize("text", ["2024", "58", "317", "6", "90"])
@pytest.mark.parametrize(("pitch", "dot", "blur"), [(14, 0.6, 0.0), (9, 0.75, 0.0), (20, 0.45, 0.0), (12, 0.7, 1.0)])
def test_a_number_in_dots_is_cut_into_its_digits(text, pitch, dot, blur):
    """Without the join each dot (or each short chain, where blur runs neighbours together) is a piece
    of its own: a 5 x 7 digit came out as several."""
    digits = prepare_digits(dot_number(text, pitch, dot, blur))
    assert len(digits) == len(text)
    margin = round(2 * pitch)
    for k, digit in enumerate(digits):  # each within its own 5 columns, 7 rows tall
        left, top, right, bottom = digit.box
        assert left >= margin + 6 * k * pitch - 1 and right <= margin + (6 * k + 5) * pitch + 1
        assert abs(top - margin) <= pitch / 2 and abs(bottom - (margin + 7 * pitch)) <= pitch / 2


def test_the_join_keeps_a_zeros_hole_and_the_gap_between_digits():
    mask, intensity = _is_inked(dot_number("00", 14, 0.6))
    joined, filled = joined_dots(mask, intensity)
    labels, count = ndimage.label(joined, structure=np.ones((3, 3)))
    assert count == 2  # one stroke a digit, not joined to its neighbour
    for k in (1, 2):
        assert np.count_nonzero(ndimage.binary_fill_holes(labels == k) & (labels != k)) > 2 * 14 * 14  # the hole
    assert np.all(filled[joined & ~mask] == np.median(intensity[mask]))  # the gaps take the dots' intensity
    assert np.array_equal(filled[mask], intensity[mask])


@pytest.mark.parametrize("text", ["8", "36", "2024"])
@pytest.mark.parametrize("pitch", [9, 12, 16])
def test_dots_as_thick_as_their_pitch_are_rows_one_pitch_apart(text, pitch):
    """Dots blurred into their neighbours measure as thick as their pitch, or a little more: the rows'
    pitch is still one row, not two or three (the join then grew each dot across the gap between
    digits, and a photographed 36 was read as one digit)."""
    mask, _ = _is_inked(dot_number(text, pitch, 0.7))
    assert _row_pitch(mask, float(pitch)) == pitch
    assert _row_pitch(mask, pitch + 0.5) == pitch


def _grainy_stroke_digit() -> Image.Image:
    image = strokes((240, 240), [[(120, 40), (120, 200)], [(80, 200), (160, 200)]], width=12)
    draw = ImageDraw.Draw(image)
    rng = np.random.default_rng(0)
    for x, y in rng.integers(5, 235, (30, 2)):
        draw.ellipse([x - 1, y - 1, x + 1, y + 1], fill=0)
    return image


def _dotted_line_beside_digits() -> Image.Image:
    image = strokes((600, 240), [[(60, 40), (60, 200)], [(110, 40), (170, 40), (110, 200)]], width=8)
    draw = ImageDraw.Draw(image)
    for x in range(220, 580, 16):
        draw.ellipse([x - 3, 197, x + 3, 203], fill=0)  # a leader of dots on the digits' baseline
    return image


def _periods() -> Image.Image:
    image = Image.new("L", (400, 120), 255)
    draw = ImageDraw.Draw(image)
    for x in range(40, 360, 40):
        draw.ellipse([x - 4, 76, x + 4, 84], fill=0)
    return image


@pytest.mark.parametrize("image", [_grainy_stroke_digit(), _dotted_line_beside_digits(), _periods(),
                                   strokes((300, 240), [[(60, 40), (60, 200)], [(180, 40), (180, 200)]])],
                         ids=["specks-beside-a-thick-stroke", "a-dotted-line", "a-row-of-periods", "two-strokes"])
def test_ink_that_is_no_dot_matrix_print_is_left_as_it_is(image):
    mask, intensity = _is_inked(image)
    assert joined_dots(mask, intensity) is None


@pytest.mark.parametrize("text", ["1070", "500", "2048", "9006"])
@pytest.mark.parametrize(("height", "bold"), [(60, False), (120, False), (120, True)])
def test_a_seven_segment_0_in_a_printed_row_is_a_digit_not_a_number_sign(text, height, bold):
    """Its top and bottom segments ink the box across, its sides make two strokes down between them:
    the number sign's pattern, but for the strokes a number sign has above and below its bars."""
    digits = prepare_digits(seven_segment_image(text, height, bold))
    assert len(digits) == len(text)


@pytest.mark.parametrize(("style", "draw"), [("seven-segment", lambda d: seven_segment_image(str(d), 150)),
                                             ("dots-5x7", lambda d: dot_number(str(d), 21, 0.7))])
def test_the_display_glyphs_trained_on_are_what_a_users_display_digits_prepare_into(style, draw):
    """Each digit drawn at another size, prepared as a user's image is, lies nearer its own glyph in the
    bank than any other digit's in that style."""
    bank = glyph_bank()
    first = CLASSES * (len(bank.fonts) - len(DISPLAY_STYLES) + DISPLAY_STYLES.index(style))
    glyphs = bank.pixels[first : first + CLASSES].reshape(CLASSES, -1).astype(float)
    assert np.array_equal(bank.labels[first : first + CLASSES], np.arange(CLASSES))
    for digit in range(CLASSES):
        pixels = prepare(draw(digit)).pixels.reshape(-1).astype(float)
        assert np.argmin(np.linalg.norm(glyphs - pixels, axis=1)) == digit
