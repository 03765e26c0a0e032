"""Line charts drawn with Pillow (linechart.py) and the run's curves.png (report.curve_panels)."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from digitnet.linechart import BLUE, GREEN, ORANGE, axis, chart, tick_label
from digitnet.report import curve_panels

values = st.lists(st.one_of(st.floats(-1e6, 1e6), st.sampled_from([math.nan, math.inf, -math.inf])), max_size=40)


@settings(max_examples=300, deadline=None)
@given(values, st.integers(3, 9), st.booleans())
@example([18182.0, 381819.0], 3, True)  # a range just past one round step: once no tick at all
def test_an_axis_covers_the_finite_values_with_round_evenly_spaced_ticks(data, most, integer):
    if integer:
        data = [round(v) if math.isfinite(v) else v for v in data]
    low, high, ticks = axis(data, most=most, integer=integer)
    finite = [v for v in data if math.isfinite(v)]
    assert low < high
    if finite:
        assert low <= min(finite) and max(finite) <= high
    assert 1 <= len(ticks) <= most and (integer or len(ticks) >= 2)
    assert all(low - 1e-9 * abs(low) <= t <= high + 1e-9 * abs(high) for t in ticks)
    if len(ticks) > 1:
        steps = np.diff(ticks)
        assert np.allclose(steps, steps[0], rtol=1e-6)
        mantissa = steps[0] / 10 ** math.floor(math.log10(steps[0]))
        assert any(math.isclose(mantissa, m, rel_tol=1e-6) for m in (1, 2, 2.5, 5, 10))
    if integer:
        assert all(float(t).is_integer() for t in ticks)


def test_tick_labels_carry_the_decimals_their_step_needs():
    assert [tick_label(v, 0.25) for v in (0.5, 1.25, -0.0)] == ["0.50", "1.25", "0"]
    assert [tick_label(v, 10) for v in (0, 20, 30)] == ["0", "20", "30"]
    assert tick_label(0.30000000000000004, 0.1) == "0.3"


def _history(train, test, accuracy):
    return [SimpleNamespace(epoch=e, train_loss=a, test_loss=b, test_accuracy=c)
            for e, (a, b, c) in enumerate(zip(train, test, accuracy), start=1)]


def _colour_near(image: np.ndarray, point, colour, radius: int = 1) -> bool:
    x, y = (int(round(v)) for v in point)
    patch = image[y - radius : y + radius + 1, x - radius : x + radius + 1].astype(int)
    return bool((np.abs(patch - np.array(colour)).max(axis=-1) <= 40).any())


def _drawn(history):
    """The run's curves as an array, and their panels (whose boxes and axes drawing fills in)."""
    panels = curve_panels(history)
    return np.asarray(chart(panels, "a title")), panels


def test_curves_put_every_value_at_its_place_in_its_colour():
    history = _history([2.0, 1.2, 0.9, 0.7, 0.6, 0.55], [1.9, 1.3, 1.1, 1.0, 1.05, 1.1],
                       [0.50, 0.71, 0.80, 0.84, 0.85, 0.86])
    image, (loss, accuracy) = _drawn(history)
    assert image.shape == (440, 1100, 3)
    assert loss.box[2] < accuracy.box[0]  # loss on the left, accuracy on the right
    for panel, series, colour in ((loss, "train_loss", BLUE), (loss, "test_loss", ORANGE),
                                  (accuracy, "test_accuracy", GREEN)):
        scale = 100 if series == "test_accuracy" else 1
        vals = [scale * getattr(r, series) for r in history]
        points = [panel.pixel(r.epoch, v) for r, v in zip(history, vals)]
        left, top, right, bottom = panel.box
        assert all(left < x < right and top < y < bottom for x, y in points)
        xs, ys = np.array(points).T
        assert np.allclose(np.diff(xs), np.diff(xs)[0]) and np.diff(xs)[0] > 0  # epochs evenly, left to right
        slopes = [(ys[i] - ys[j]) / (vals[i] - vals[j]) for i in range(6) for j in range(i) if vals[i] != vals[j]]
        assert np.allclose(slopes, slopes[0]) and slopes[0] < 0  # larger values higher up, linearly
        missing = [k for k, p in enumerate(points) if not _colour_near(image, p, colour)]
        assert not missing, f"{series}: no {colour} marker at epochs {[k + 1 for k in missing]}"
    assert not _colour_near(image, loss.pixel(3, 1.6), BLUE, radius=2)  # nothing drawn where no value is


@pytest.mark.parametrize("history", [
    _history([1.0], [1.1], [0.5]),  # one epoch
    _history([1.0, math.nan, 0.8], [1.1, math.inf, 0.9], [0.5, 0.6, 0.7]),  # a diverged value between two
    _history([0.3] * 4, [0.3] * 4, [1.0] * 4),  # flat lines
])
def test_curves_of_a_single_epoch_flat_lines_or_non_finite_values_still_draw(history):
    image, (loss, accuracy) = _drawn(history)
    for r in history:
        if math.isfinite(r.test_loss):  # drawn over the train loss, which it may equal
            assert _colour_near(image, loss.pixel(r.epoch, r.test_loss), ORANGE)
        assert _colour_near(image, accuracy.pixel(r.epoch, 100 * r.test_accuracy), GREEN)
    for colour in (BLUE, ORANGE, GREEN):  # no line runs off towards a value that is not there
        ys, xs = np.nonzero(np.abs(image.astype(int) - np.array(colour)).max(axis=-1) <= 40)
        inside = [any(l <= x <= r and t <= y <= b for l, t, r, b in (loss.box, accuracy.box)) for x, y in zip(xs, ys)]
        assert all(inside), f"{colour} drawn outside the panels"
