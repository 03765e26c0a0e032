"""Printed digits for training: the glyph bank, the `print` augmentation, and the run's record of them."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from conftest import crash_after, Crash
from scipy import ndimage

from digitnet.data.augment import PRINT_SHARE, Augmenter
from digitnet.data.batches import scale_images
from digitnet.data.printed import DISPLAY_STYLES, TRAINED_FAMILIES, glyph_bank, training_fonts
from digitnet.errors import DataError
from digitnet.settings import CLASSES


def test_the_bank_holds_every_digit_of_every_training_font_in_mnist_format():
    bank = glyph_bank()
    fonts = training_fonts()
    assert len(fonts) >= 12 and all(f.name.startswith(TRAINED_FAMILIES) for f in fonts)
    styles = len(fonts) + len(DISPLAY_STYLES)
    assert bank.pixels.shape == (CLASSES * styles, 28, 28) and bank.pixels.dtype == np.uint8
    assert np.array_equal(np.bincount(bank.labels), [styles] * CLASSES)
    assert bank.fonts == tuple(f.name for f in fonts) + DISPLAY_STYLES
    for field in bank.pixels:
        assert field.max() == 255 and field.mean() > 10  # white ink at full strength, a digit not a speck
        rows, cols = np.flatnonzero(field.any(axis=1)), np.flatnonzero(field.any(axis=0))
        assert 18 <= max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 <= 23  # the 20x20 box, blurred by the shift
        assert np.allclose(ndimage.center_of_mass(field.astype(float)), (14.0, 14.0), atol=0.6)


def test_glyphs_differ_between_digits_and_agree_between_renderings():
    bank = glyph_bank()
    glyph_bank.cache_clear()
    again = glyph_bank()
    assert again.sha256 == bank.sha256 and np.array_equal(again.pixels, bank.pixels)
    per_font = bank.pixels.reshape(-1, CLASSES, 784).astype(float)
    for digits in per_font:  # within one font, no two digits are near-copies
        distances = np.linalg.norm(digits[:, None] - digits[None], axis=-1) + np.eye(CLASSES) * 1e9
        assert distances.min() > 500


def test_print_swaps_a_share_of_the_batch_for_glyphs_with_their_labels():
    bank = glyph_bank()
    x = torch.full((2000, 784), -1.0)  # blank images: every non-blank row afterwards was swapped in
    y = torch.full((2000,), 99)
    augment = Augmenter("affine+thickness+print", 3, x.device)
    out, labels = augment(x, y, epoch=1, step=0)
    swapped = labels != 99
    assert abs(float(swapped.float().mean()) - PRINT_SHARE) < 0.03
    assert torch.equal((out > -1).any(dim=1), swapped)
    assert set(labels[swapped].tolist()) == set(range(CLASSES))
    assert torch.equal(x, torch.full((2000, 784), -1.0)) and torch.equal(y, torch.full((2000,), 99))  # inputs kept
    again, again_labels = Augmenter("affine+thickness+print", 3, x.device)(x, y, epoch=1, step=0)
    assert torch.equal(out, again) and torch.equal(labels, again_labels)
    glyphs = scale_images(bank.pixels)
    plain, plain_labels = Augmenter("none", 0, x.device)(glyphs, torch.as_tensor(bank.labels), 1, 0)
    assert torch.equal(plain, glyphs) and torch.equal(plain_labels, torch.as_tensor(bank.labels))


def test_a_print_run_records_its_glyphs_and_resume_refuses_other_ones(tmp_path, synthetic_data, monkeypatch,
                                                                     hand_over_data):
    from digitnet.runs import resume, train

    with pytest.raises(Crash):
        train("cnn", synthetic_data, epochs=2, out=tmp_path / "run", progress=False, on_epoch=crash_after(1))
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["data"]["printed"] == glyph_bank().describe()
    other = dataclasses.replace(glyph_bank(), sha256="0" * 64)
    monkeypatch.setattr("digitnet.data.printed.glyph_bank", lambda: other)
    with pytest.raises(DataError, match="printed digits rendered here .* differ from those recorded in .*config.json"):
        resume(tmp_path / "run", progress=False)


def test_missing_or_broken_fonts_are_one_line_errors(monkeypatch, tmp_path):
    import matplotlib

    import digitnet.data.printed as printed

    monkeypatch.setattr(matplotlib, "get_data_path", lambda: str(tmp_path))
    with pytest.raises(DataError, match="none of matplotlib's fonts found .*--augment affine\\+thickness"):
        training_fonts()
    broken = tmp_path / "DejaVuSans.ttf"
    broken.write_bytes(b"not a font")
    monkeypatch.setattr(printed, "training_fonts", lambda: [broken])
    glyph_bank.cache_clear()
    try:
        with pytest.raises(DataError, match="DejaVuSans.ttf: cannot render printed digits from this font"):
            glyph_bank()
    finally:
        glyph_bank.cache_clear()
