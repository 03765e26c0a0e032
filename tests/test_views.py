"""A prepared digit's confidences averaged over its views (predict.views): moved a pixel each way and
scaled a tenth either way about the field's centre."""

import numpy as np
from conftest import learnable_digits
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from digitnet.imageprep import PreparedDigit
from digitnet.predict import VIEWS, Predictor, views

FIELD = (28, 28)


@settings(max_examples=50, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 4), st.just(24), st.just(24))))
def test_the_first_views_are_the_digits_as_they_are_and_moved_a_pixel_each_way(inner):
    """With an empty margin round the field (as preparation leaves one), the moved views are the
    digits moved exactly, nothing lost at the edge."""
    digits = np.pad(inner, ((0, 0), (2, 2), (2, 2)))
    seen = views(digits).reshape(VIEWS, len(digits), *FIELD)
    assert seen.dtype == np.uint8
    np.testing.assert_array_equal(seen[0], digits)
    for view, (down, right) in zip(seen[1:5], [(1, 0), (-1, 0), (0, 1), (0, -1)]):
        np.testing.assert_array_equal(view, np.roll(digits, (down, right), axis=(1, 2)))


def test_the_scaled_views_shrink_and_grow_the_digit_about_the_fields_centre():
    digit = np.zeros((1, *FIELD), np.uint8)
    digit[0, 4:24, 12:16] = 255  # a bar 20 pixels tall, centred
    smaller, larger = views(digit)[5:]
    for view, height in ((smaller, 18), (larger, 22)):
        rows = np.flatnonzero(view.max(axis=1) > 127)
        assert len(rows) == height, (rows, height)
        assert abs((rows[0] + rows[-1]) / 2 - 13.5) <= 0.5  # about the centre, not a corner


def test_confidences_are_the_mean_over_the_views_unless_one_view_is_asked(synthetic_run):
    predictor = Predictor(synthetic_run)
    images, _ = learnable_digits(6, seed=11)
    each = np.stack([predictor.probabilities(view) for view in views(images).reshape(VIEWS, 6, *FIELD)])
    np.testing.assert_allclose(predictor.digit_probabilities(images), each.mean(axis=0), rtol=1e-5, atol=1e-7)
    reading = predictor.predict_prepared([PreparedDigit(image, False) for image in images])
    np.testing.assert_allclose([p.probabilities for p in reading.predictions], each.mean(axis=0), rtol=1e-5, atol=1e-7)
    assert [p.digit for p in reading.predictions] == list(each.mean(axis=0).argmax(axis=1))
    predictor.one_view = True
    np.testing.assert_allclose(predictor.digit_probabilities(images), each[0], rtol=1e-6)
