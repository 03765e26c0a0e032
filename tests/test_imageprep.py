import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from digitnet.imageprep import ImageError, open_image, prepare
from digitnet.predict import Predictor


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
    assert abs(cy - 13.5) < 1 and abs(cx - 13.5) < 1


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


@settings(max_examples=150, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 60), st.integers(1, 60)), elements=st.floats(0, 255)))
def test_any_array_gives_a_digit_or_an_image_error(array):
    try:
        prepared = prepare(array)
    except ImageError:
        return
    assert prepared.pixels.shape == (28, 28) and prepared.pixels.dtype == np.uint8
    assert prepared.pixels.max() > 0


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
