"""Line charts drawn with Pillow: panels side by side, each with round-numbered axes, a grid,
lines with markers and a legend.

The run folder's curves.png was the last figure `digitnet train` drew with matplotlib: importing it
and drawing the two panels took 0.43-0.45 s at the end of every run, 0.09-0.2 s a figure after
that; drawn here, 0.07-0.09 s and 0.045 s (`benchmarks/cli_overheads.py`, AMD EPYC), and
`train` no longer imports matplotlib at all. Charts are drawn SUPERSAMPLE times larger and shrunk,
which smooths the lines and markers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SUPERSAMPLE = 2
BLUE, ORANGE, GREEN = (31, 119, 180), (255, 127, 14), (44, 160, 44)  # matplotlib's first three colours
GRID, FRAME = (225, 225, 225), (0, 0, 0)


@dataclass
class Series:
    label: str
    xs: list[float]
    ys: list[float]
    colour: tuple[int, int, int]
    marker: str = "o"  # "o" a disc, "s" a square


@dataclass
class Panel:
    title: str
    x_label: str
    y_label: str
    series: list[Series]
    integer_x: bool = True
    legend: bool = False
    box: tuple[int, int, int, int] = (0, 0, 1, 1)  # left, top, right, bottom: the plotting area, in pixels
    x_axis: tuple = (0.0, 1.0, ())  # (low, high, ticks), set by chart()
    y_axis: tuple = (0.0, 1.0, ())

    def pixel(self, x: float, y: float) -> tuple[float, float]:
        """Where the value (x, y) lies in the chart's (final-size) pixels."""
        left, top, right, bottom = self.box
        (x0, x1, _), (y0, y1, _) = self.x_axis, self.y_axis
        return left + (x - x0) / (x1 - x0) * (right - left), bottom - (y - y0) / (y1 - y0) * (bottom - top)


def axis(values, most: int = 6, integer: bool = False) -> tuple[float, float, list[float]]:
    """(low, high, ticks) for values: the finite values' range widened by 5% each side (by 0.5 or 5% of
    the value where they are all equal; 0 to 1 where there are none), ticks at round steps (1, 2, 2.5
    or 5 times a power of ten; whole numbers with integer) inside it, at most `most` of them."""
    finite = [float(v) for v in values if math.isfinite(v)]
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    if high - low <= 1e-12 * max(1.0, abs(high)):
        pad = 0.05 * abs(low) or 0.5
        low, high = low - pad, high + pad
    pad = 0.05 * (high - low)
    low, high = low - pad, high + pad
    step = _round_step((high - low) / (most - 1), integer)
    while _count(low, high, step) > most:
        step = _round_step(step * 1.01, integer)
    # one tick alone does not show a scale; whole numbers may keep one (a range under 2), never none
    while _count(low, high, step) < (1 if integer else 2) and (smaller := _smaller_round_step(step, integer)):
        step = smaller
    first, last = math.ceil(low / step), math.floor(high / step)
    return low, high, [k * step for k in range(first, last + 1)]


def _count(low: float, high: float, step: float) -> int:
    return math.floor(high / step) - math.ceil(low / step) + 1


def _round_step(raw: float, integer: bool) -> float:
    """The smallest round step at least raw: 1, 2, 2.5 or 5 times a power of ten (no 2.5, and at
    least 1, for whole numbers)."""
    if integer and raw <= 1:
        return 1.0
    power = 10.0 ** math.floor(math.log10(raw))
    mantissas = (1, 2, 5, 10) if integer else (1, 2, 2.5, 5, 10)
    return next(m * power for m in mantissas if m * power >= raw * (1 - 1e-9))


def _smaller_round_step(step: float, integer: bool = False) -> float | None:
    """The next round step below step (10 -> 5 -> 2.5 -> 2 -> 1 times a power of ten; for whole
    numbers a whole step, and None below 1)."""
    power = 10.0 ** math.floor(math.log10(step) + 1e-9)
    smaller = (m * power for m in (5, 2.5, 2, 1, 0.5) if m * power < step * (1 - 1e-9))
    return next((s for s in smaller if not integer or (s >= 1 and s.is_integer())), None)


def tick_label(value: float, step: float) -> str:
    """value written with as many decimals as the step needs (0.25 steps: two)."""
    decimals = 0
    while decimals < 10 and abs(step * 10**decimals - round(step * 10**decimals)) > 1e-6 * step * 10**decimals:
        decimals += 1
    text = f"{value:.{decimals}f}"
    return "0" if float(text) == 0 else text


def chart(panels: list[Panel], title: str, size: tuple[int, int] = (1100, 440)):
    """The panels side by side under the title, as an RGB PIL image of `size`; each panel's box and
    axes are filled in (Panel.pixel then maps values to the image's pixels)."""
    from PIL import Image, ImageDraw, ImageFont

    s = SUPERSAMPLE
    width, height = size
    fonts = {k: ImageFont.load_default(size=v * s) for k, v in (("tick", 11), ("label", 12), ("title", 14))}
    image = Image.new("RGB", (width * s, height * s), "white")
    draw = ImageDraw.Draw(image)
    draw.text((width * s // 2, 8 * s), title, fill="black", font=fonts["title"], anchor="ma")
    share = width / len(panels)
    for k, panel in enumerate(panels):
        panel.box = (round(k * share + 78), 62, round((k + 1) * share - 22), height - 52)
        panel.x_axis = axis([x for line in panel.series for x in line.xs], integer=panel.integer_x)
        panel.y_axis = axis([y for line in panel.series for y in line.ys])
        _draw_panel(image, draw, panel, fonts)
    return image.resize(size, Image.Resampling.LANCZOS)


def _draw_panel(image, draw, panel: Panel, fonts) -> None:
    s = SUPERSAMPLE
    left, top, right, bottom = (v * s for v in panel.box)

    def at(x, y):
        px, py = panel.pixel(x, y)
        return px * s, py * s

    for ticks, vertical in ((panel.x_axis[2], True), (panel.y_axis[2], False)):
        step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
        for t in ticks:
            if vertical:
                x = at(t, panel.y_axis[0])[0]
                draw.line((x, top, x, bottom), fill=GRID, width=s)
                draw.line((x, bottom, x, bottom + 4 * s), fill=FRAME, width=s)
                draw.text((x, bottom + 6 * s), tick_label(t, step), fill="black", font=fonts["tick"], anchor="ma")
            else:
                y = at(panel.x_axis[0], t)[1]
                draw.line((left, y, right, y), fill=GRID, width=s)
                draw.line((left - 4 * s, y, left, y), fill=FRAME, width=s)
                draw.text((left - 6 * s, y), tick_label(t, step), fill="black", font=fonts["tick"], anchor="rm")
    draw.rectangle((left, top, right, bottom), outline=FRAME, width=s)
    for line in panel.series:
        _draw_series(draw, line, at)
    draw.text(((left + right) // 2, top - 8 * s), panel.title, fill="black", font=fonts["label"], anchor="md")
    draw.text(((left + right) // 2, bottom + 24 * s), panel.x_label, fill="black", font=fonts["label"], anchor="ma")
    label = vertical_text(panel.y_label, fonts["label"])
    image.paste(label, (left - 44 * s - label.width, (top + bottom - label.height) // 2))
    if panel.legend:
        _draw_legend(draw, panel.series, (right - 10 * s, top + 10 * s), fonts["tick"])


def _draw_series(draw, line: Series, at) -> None:
    """The line through the finite points (broken where a value is not), a marker on each."""
    s = SUPERSAMPLE
    points = [at(x, y) if math.isfinite(y) else None for x, y in zip(line.xs, line.ys)]
    for a, b in zip(points, points[1:]):
        if a is not None and b is not None:
            draw.line((*a, *b), fill=line.colour, width=2 * s)
    for p in points:
        if p is not None:
            _marker(draw, p, line.marker, line.colour)


def _marker(draw, centre, marker: str, colour) -> None:
    r = 3.5 * SUPERSAMPLE
    x, y = centre
    if marker == "s":
        draw.rectangle((x - r, y - r, x + r, y + r), fill=colour)
    else:
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)


def _draw_legend(draw, series: list[Series], top_right, font) -> None:
    s = SUPERSAMPLE
    row = 18 * s
    text_w = max(font.getlength(line.label) for line in series)
    right, top = top_right
    left = right - text_w - 44 * s
    draw.rectangle((left, top, right, top + row * len(series) + 6 * s), fill="white", outline=(200, 200, 200), width=s)
    for k, line in enumerate(series):
        y = top + 3 * s + row * k + row // 2
        draw.line((left + 6 * s, y, left + 30 * s, y), fill=line.colour, width=2 * s)
        _marker(draw, (left + 18 * s, y), line.marker, line.colour)
        draw.text((left + 36 * s, y), line.label, fill="black", font=font, anchor="lm")


def vertical_text(text: str, font):
    """text turned 90 degrees counter-clockwise (reading upwards), black on white, as an "L" image."""
    from PIL import Image, ImageDraw

    _, _, right, bottom = font.getbbox(text)
    label = Image.new("L", (right + 2, bottom + 2), 255)
    ImageDraw.Draw(label).text((0, 0), text, fill=0, font=font)
    return label.rotate(90, expand=True, fillcolor=255)
