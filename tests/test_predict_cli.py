import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from conftest import TIME_FACTOR

from digitnet.predict import confidences

pytestmark = pytest.mark.slow


def digitnet(*args):
    return subprocess.run([sys.executable, "-m", "digitnet", *map(str, args)], capture_output=True, text=True,
                          timeout=120 * TIME_FACTOR)


@pytest.fixture
def images(tmp_path, mnist_test_digits):
    folder = tmp_path / "images"
    folder.mkdir()
    digits, labels = mnist_test_digits
    for i in range(3):
        Image.fromarray(255 - digits[i]).resize((200, 200)).save(folder / f"digit{i}-label{labels[i]}.png")
    Image.new("L", (64, 64), 255).save(folder / "blank.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    return folder


def test_predict_a_folder_one_line_per_image_and_clear_errors(mnist_run, images, tmp_path):
    done = digitnet("predict", mnist_run, images, "--show-input", tmp_path / "seen")
    assert done.returncode == 1  # some images failed; the others were still predicted
    lines = done.stdout.splitlines()
    assert len(lines) == 3
    for line in lines:
        path, digit, confidence = line.split("\t")
        assert path.endswith(f"label{digit}.png") and confidence.endswith("%")
    errors = done.stderr.splitlines()
    assert any("blank.png: no digit found" in e for e in errors)
    assert any("broken.jpg:" in e for e in errors) and "Traceback" not in done.stderr
    seen = sorted(p.name for p in (tmp_path / "seen").iterdir())
    assert seen == [f"digit{i}-label{l}.png.input.png" for i, l in zip(range(3), _labels(lines))]
    assert Image.open(tmp_path / "seen" / seen[0]).size == (28, 28)


def _labels(lines):
    return [line.split("\t")[0].split("label")[1][0] for line in lines]


def test_predict_json_gives_all_ten_confidences(mnist_run, images):
    image = next(images.glob("digit0-label*.png"))
    done = digitnet("predict", mnist_run, image, "--json")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["file"] == str(image) and len(record["probabilities"]) == 10
    assert record["digit"] == int(image.stem[-1])
    assert sum(record["probabilities"]) == pytest.approx(1.0, abs=1e-5)
    assert record["confidence"] == max(record["probabilities"]) and record["inverted"] is True


def test_folder_without_images_and_missing_file(mnist_run, tmp_path):
    (tmp_path / "empty").mkdir()
    done = digitnet("predict", mnist_run, tmp_path / "empty", tmp_path / "missing.png")
    assert done.returncode == 1
    assert "empty: no images in this folder" in done.stderr and "missing.png: no such file" in done.stderr


def test_mse_outputs_become_probabilities():
    import torch

    out = torch.tensor([[0.9, 0.2, -0.3] + [0.0] * 7, [-1.0] * 10])
    p = confidences(out, "mse-sum")
    assert p[0, :3].tolist() == pytest.approx([0.9 / 1.1, 0.2 / 1.1, 0.0])
    assert p[1].tolist() == pytest.approx([0.1] * 10)
    np.testing.assert_allclose(confidences(out, "cross-entropy").sum(1).numpy(), 1.0, rtol=1e-6)
