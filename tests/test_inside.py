"""Looking inside: /api/inspect and /api/units against a forward pass written out here, `inspect`
and `compare` writing their files, TensorBoard event files read back with TensorBoard's reader."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import TIME_FACTOR, learnable_digits
from PIL import Image
from starlette.testclient import TestClient

from digitnet.comparison import compare_runs, differing
from digitnet.inside import look_inside
from digitnet.inspection import inspect_run, pca_2d
from digitnet.runs import load_run, train
from digitnet.serve.app import create_app


def _forward_by_hand(model, pixels):
    """The MLP's layers computed from its weights: the reference for /api/inspect."""
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    x = torch.as_tensor(pixels, dtype=torch.float32).reshape(1, -1) * (2 / 255) - 1
    hidden = []
    for layer in linears[:-1]:
        x = torch.relu(x @ layer.weight.T + layer.bias)
        hidden.append(x[0])
    return hidden, (x @ linears[-1].weight.T + linears[-1].bias)[0]


def test_api_inspect_gives_every_layer_equal_to_a_forward_pass(synthetic_run):
    _, model = load_run(synthetic_run)
    client = TestClient(create_app(synthetic_run))
    images, labels = learnable_digits(3, seed=11)
    for image, label in zip(images, labels):
        answer = client.post("/api/inspect", json={"pixels": image.tolist(), "prepare": False}).json()
        hidden, output = _forward_by_hand(model, image)
        assert [layer["name"] for layer in answer["layers"]] == ["hidden 1", "hidden 2", "output"]
        assert [layer["shape"] for layer in answer["layers"]] == [[256], [128], [10]]
        for layer, expected in zip(answer["layers"], [*hidden, output]):
            np.testing.assert_allclose(layer["values"], expected.detach().numpy(), atol=1e-3)
        assert answer["digit"] == int(label) == int(output.argmax())
        assert answer["input"] == image.tolist()
        contributions = answer["contributions"]
        pushes = (hidden[-1] * model[-1].weight[answer["digit"]]).detach()
        assert [u["unit"] for u in contributions["up"]] == pushes.argsort(descending=True)[:8].tolist()
        assert contributions["up"][0]["push"] == pytest.approx(float(pushes.max()), abs=1e-5)
        assert contributions["bias"] + float(pushes.sum()) == pytest.approx(float(output[answer["digit"]].detach()), abs=1e-4)


def test_api_inspect_takes_images_and_refuses_what_predict_refuses(synthetic_run):
    client = TestClient(create_app(synthetic_run))
    image = Image.new("L", (120, 120), 255)
    image.paste(0, (50, 20, 70, 100))
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    answer = client.post("/api/inspect", content=buffer.getvalue(), headers={"content-type": "image/png"})
    assert answer.status_code == 200 and len(answer.json()["layers"]) == 3
    assert client.post("/api/inspect", content=b"{", headers={"content-type": "application/json"}).status_code == 400
    blank = client.post("/api/inspect", json={"pixels": [[0] * 28] * 28})
    assert blank.status_code == 422 and "no digit found" in blank.json()["error"]


def test_api_units_gives_first_layer_weights(synthetic_run):
    _, model = load_run(synthetic_run)
    client = TestClient(create_app(synthetic_run))
    answer = client.get("/api/units/17").json()
    assert answer["layer"] == "hidden 1" and answer["unit"] == 17 and answer["units"] == 256
    np.testing.assert_allclose(answer["weights"], model[0].weight[17].reshape(28, 28).detach().numpy(), atol=1e-6)
    assert client.get("/api/units/256").status_code == 404
    assert client.get("/api/units/x").status_code == 404
    assert client.get("/inside").status_code == 200


def test_look_inside_a_cnn_shows_feature_maps(tmp_path, synthetic_data):
    train("cnn", synthetic_data, epochs=1, out=tmp_path / "cnn", progress=False)
    _, model = load_run(tmp_path / "cnn")
    answer = look_inside(model, synthetic_data.x_test[0], "cross-entropy")
    assert [(l["name"], l["kind"], l["shape"]) for l in answer["layers"]] == [
        ("conv block 1", "maps", [32, 14, 14]), ("conv block 2", "maps", [64, 7, 7]), ("dense", "units", [128]),
        ("output", "units", [10])]
    x = torch.as_tensor(synthetic_data.x_test[:1], dtype=torch.float32).reshape(1, -1) * (2 / 255) - 1
    np.testing.assert_allclose(answer["layers"][-1]["values"], model(x)[0].detach().numpy(), atol=1e-3)
    client = TestClient(create_app(tmp_path / "cnn"))
    kernel = client.get("/api/units/3").json()
    assert kernel["layer"] == "conv block 1" and np.array(kernel["weights"]).shape == (3, 3)


def test_pca_finds_the_direction_of_largest_variance():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(500, 1)) * np.array([[3.0, 4.0, 0.0]]) + rng.normal(size=(500, 3)) * 0.01
    projected, shares = pca_2d(points)
    assert shares[0] > 0.99
    assert abs(np.corrcoef(projected[:, 0], points[:, 0])[0, 1]) > 0.999


INSPECT_FILES = {"first_layer.png", "hidden_pca.png", "mistakes.png", "per_class.png"}


def test_inspect_writes_its_figures_with_snapshots(tmp_path, synthetic_data):
    run = tmp_path / "run"
    train("best", synthetic_data, epochs=4, out=run, progress=False, snapshots=2)
    assert sorted(p.name for p in (run / "snapshots").iterdir()) == ["epoch-0002.safetensors",
                                                                      "epoch-0004.safetensors"]
    written = inspect_run(run, tmp_path / "out", data=synthetic_data)
    names = {p.name for p in written}
    assert INSPECT_FILES | {"features_over_training.png", "hidden_tsne.png"} <= names
    for path in written:
        with Image.open(path) as image:
            assert image.size[0] > 200 and image.size[1] > 100


def test_compare_names_the_settings_that_differ(tmp_path, synthetic_data):
    train("best", synthetic_data, epochs=2, out=tmp_path / "a", progress=False)
    train("best", synthetic_data, epochs=3, out=tmp_path / "b", progress=False, lr=1e-3)
    table, figure, table_file = compare_runs([tmp_path / "a", tmp_path / "b"], tmp_path / "cmp.png")
    lines = table.splitlines()
    assert lines[0] == "| run | recipe.epochs | recipe.lr | final acc | best acc (epoch) | epochs | s/epoch |"
    assert lines[2].startswith("| a | 2 | 0.002 |") and lines[3].startswith("| b | 3 | 0.001 |")
    assert table_file.read_text() == table and figure.stat().st_size > 10_000
    assert differing([json.loads((tmp_path / r / "config.json").read_text()) for r in "ab"]) == \
        ["recipe.epochs", "recipe.lr"]


@pytest.mark.slow
def test_inspect_and_compare_commands(tmp_path, mnist_t10k_dir):
    runs = []
    for recipe in ("tutorial", "best"):
        runs.append(tmp_path / recipe)
        train(recipe, "mnist-10k", data_dir=mnist_t10k_dir, epochs=2, out=runs[-1], progress=False)
    done = subprocess.run([sys.executable, "-m", "digitnet", "inspect", str(runs[1])], capture_output=True, text=True,
                          timeout=300 * TIME_FACTOR)
    assert done.returncode == 0, done.stderr
    assert INSPECT_FILES <= {p.name for p in (runs[1] / "inspect").iterdir()}
    done = subprocess.run([sys.executable, "-m", "digitnet", "compare", *map(str, runs), "--out",
                           str(tmp_path / "c.png")], capture_output=True, text=True, timeout=300 * TIME_FACTOR)
    assert done.returncode == 0, done.stderr
    assert "| tutorial | tutorial |" in done.stdout and (tmp_path / "c.png").is_file()


def test_tensorboard_event_files_read_back(tmp_path, synthetic_data):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from digitnet.tensorboard_log import TensorBoardLog

    log = TensorBoardLog(tmp_path / "tb", "run")
    result = train("best", synthetic_data, epochs=3, out=tmp_path / "run", progress=False, on_epoch=log)
    log.close()
    events = EventAccumulator(str(tmp_path / "tb" / "run"), size_guidance={"images": 0, "histograms": 0}).Reload()
    tags = events.Tags()
    assert {"loss/train", "loss/test", "accuracy/test", "learning_rate"} <= set(tags["scalars"])
    accuracy = [e.value for e in events.Scalars("accuracy/test")]
    assert accuracy == pytest.approx([r.test_accuracy for r in result.history])
    assert [e.step for e in events.Scalars("loss/train")] == [1, 2, 3]
    assert "weights/0.weight" in tags["histograms"] and "first_layer/hidden_1" in tags["images"]


def test_tensorboard_missing_is_one_line(synthetic_data, tmp_path, monkeypatch):
    import builtins

    from digitnet.errors import ConfigError
    from digitnet.tensorboard_log import TensorBoardLog

    real_import = builtins.__import__

    def without_tensorboard(name, *args, **kwargs):
        if name == "tensorboard" or name.startswith("tensorboard."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_tensorboard)
    with pytest.raises(ConfigError, match=r"^--tensorboard needs the tensorboard package; pip install "
                                          r"'digitnet\[tensorboard\]'$"):
        TensorBoardLog(tmp_path / "tb", "run")


def test_inspect_of_a_missing_run_creates_nothing(tmp_path):
    from digitnet.errors import ModelFileError

    with pytest.raises(ModelFileError, match="no such run folder"):
        inspect_run(tmp_path / "absent")
    assert not (tmp_path / "absent").exists()
