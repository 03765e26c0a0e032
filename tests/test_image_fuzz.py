"""Corrupt and hostile images, in every format Pillow writes here: reading one gives an ImageError
(one line), never another exception; `predict` reports each bad file and goes on; the server
answers every hostile request with JSON and a 4xx, never a 500."""

import io
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import TIME_FACTOR
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw
from starlette.testclient import TestClient

from digitnet.imageprep import ImageError, open_image, prepare_digits
from digitnet.serve.app import create_app


def _digit_image(mode: str) -> Image.Image:
    image = Image.new("L", (48, 48), 255)
    ImageDraw.Draw(image).line([(24, 8), (24, 40)], fill=0, width=5)
    return image.convert(mode)


def _encodings() -> dict[str, bytes]:
    """One small digit image in every format this Pillow can write and read back."""
    Image.init()
    out = {}
    for fmt in sorted(set(Image.SAVE)):
        for mode in ("RGB", "L", "1"):
            buffer = io.BytesIO()
            try:
                _digit_image(mode).save(buffer, format=fmt)
                Image.open(io.BytesIO(buffer.getvalue())).load()
            except Exception:
                continue
            out[fmt] = buffer.getvalue()
            break
    return out


ENCODINGS = _encodings()


def test_enough_formats_are_fuzzed():
    assert {"PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"} <= set(ENCODINGS) and len(ENCODINGS) >= 15


def _damaged(data: bytes, flips, cut) -> bytes:
    damaged = bytearray(data)
    for position, value in flips:
        damaged[position % len(damaged)] = value
    return bytes(damaged[: max(1, int(len(damaged) * cut))])


@settings(max_examples=600, deadline=None)
@given(fmt=st.sampled_from(sorted(ENCODINGS)), flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)),
                                                               max_size=6),
       cut=st.sampled_from([1.0, 1.0, 0.9, 0.5, 0.2]))
def test_a_damaged_image_is_an_image_error_or_reads(fmt, flips, cut):
    data = _damaged(ENCODINGS[fmt], flips, cut)
    try:
        digits = prepare_digits(open_image(data, "upload"))
        event("read")
        assert all(d.pixels.shape == (28, 28) for d in digits)
    except ImageError as exc:
        event("ImageError")
        assert "\n" not in str(exc)


def test_the_corrupt_avif_of_the_attack_is_an_image_error():
    data = bytearray(ENCODINGS["AVIF"])
    found = 0
    for position in range(len(data)):  # every single-byte change
        changed = bytes(data[:position]) + bytes([data[position] ^ 0x5A]) + bytes(data[position + 1:])
        try:
            Image.open(io.BytesIO(changed)).load()
        except (RuntimeError, SyntaxError):  # what Pillow's AVIF plugin raises for these
            found += 1
            with pytest.raises(ImageError, match="image"):
                open_image(changed, "image")
        except Exception:
            continue
    assert found >= 1


def test_predict_reports_each_bad_file_and_goes_on(tmp_path, synthetic_run):
    good = tmp_path / "good.png"
    _digit_image("L").save(good)
    data = bytearray(ENCODINGS["AVIF"])
    bad = tmp_path / "bad.avif"
    for position in range(len(data)):  # the first change Pillow's AVIF plugin fails on with a RuntimeError
        changed = bytes(data[:position]) + bytes([data[position] ^ 0x5A]) + bytes(data[position + 1:])
        try:
            Image.open(io.BytesIO(changed)).load()
        except (RuntimeError, SyntaxError):
            bad.write_bytes(changed)
            break
        except Exception:
            continue
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    done = subprocess.run([sys.executable, "-m", "digitnet", "predict", str(synthetic_run), str(bad), str(empty),
                           str(good)], capture_output=True, text=True, timeout=120 * TIME_FACTOR)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    errors = done.stderr.splitlines()
    assert len(errors) == 2 and errors[0].startswith(f"digitnet: error: {bad}:") and str(empty) in errors[1]
    assert done.stdout.startswith(f"{good}\t")


@pytest.fixture(scope="module")
def client(synthetic_run):
    return TestClient(create_app(synthetic_run), raise_server_exceptions=False)


HOSTILE = [
    ("application/json", json.dumps({"pixels": [[10**400] + [0] * 27] + [[0] * 28] * 27}).encode(), 422),
    ("application/json", b'{"pixels": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400),
    ("application/json", b"[" * 100_000, 400),
    ("application/json", json.dumps({"pixels": [[[0]] * 28] * 28}).encode(), 422),
    ("application/json", json.dumps({"pixels": [["1"] * 28] * 28}).encode(), 422),
    ("application/json", json.dumps({"pixels": [[float("nan")] * 28] * 28}).encode(), 422),
    ("application/json", json.dumps({"pixels": [[0] * 28] * 28, "prepare": "yes"}).encode(), 422),
    ("image/png", b"\x00" * 100, 422),
    ("image/png", b"\x89PNG\r\n\x1a\n" + b"\xff" * 64, 422),
]


@pytest.mark.parametrize("content_type, body, status", HOSTILE)
def test_hostile_requests_get_a_json_4xx(client, content_type, body, status):
    response = client.post("/api/predict", content=body, headers={"content-type": content_type})
    assert response.status_code == status, response.text
    assert "error" in response.json()


def test_a_corrupt_avif_sent_as_png_is_a_422(client):
    data = bytearray(ENCODINGS["AVIF"])
    answered = []
    for position in range(0, len(data), 3):
        changed = bytes(data[:position]) + bytes([data[position] ^ 0x5A]) + bytes(data[position + 1:])
        response = client.post("/api/predict", content=changed, headers={"content-type": "image/png"})
        answered.append(response.status_code)
        assert response.status_code in (200, 422), response.text
        response.json()
    assert 422 in answered


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fmt=st.sampled_from(sorted(ENCODINGS)), flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)),
                                                               max_size=6),
       content_type=st.sampled_from(["image/png", "image/jpeg", "image/webp", "application/json",
                                     "multipart/form-data; boundary=x"]))
def test_any_damaged_upload_is_answered_with_json_and_never_a_500(client, fmt, flips, content_type):
    body = _damaged(ENCODINGS[fmt], flips, 1.0)
    response = client.post("/api/predict", content=body, headers={"content-type": content_type})
    event(f"status {response.status_code}")
    assert response.status_code < 500, response.text
    assert isinstance(response.json(), dict)


def test_an_unexpected_defect_is_still_json(synthetic_run, monkeypatch):
    from digitnet.predict import Predictor

    def broken(self, *args, **kwargs):
        raise ZeroDivisionError("a defect")

    monkeypatch.setattr(Predictor, "predict_prepared", broken)
    app_client = TestClient(create_app(synthetic_run), raise_server_exceptions=False)
    image = np.zeros((28, 28), dtype=np.uint8)
    image[8:20, 12:16] = 255
    response = app_client.post("/api/predict", json={"pixels": image.tolist()})
    assert response.status_code == 500
    assert response.json() == {"error": "internal error (ZeroDivisionError); please report it"}
