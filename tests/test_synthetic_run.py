"""The whole pipeline on small synthetic data, in seconds: train, run folder, resume, predict, serve.

The fast tier's end-to-end test; the real-data versions of these tests are marked slow.
"""


import numpy as np
import pytest
import torch
from conftest import Crash, RUN_FILES, crash_after, learnable_digits
from safetensors.torch import load_file
from starlette.testclient import TestClient

from digitnet.checkpoint import load_checkpoint
from digitnet.predict import Predictor
from digitnet.errors import DataError
from digitnet.runs import check_data_matches, load_config, load_run, read_metrics, resume, train
from digitnet.runs.evaluate import evaluate_on_test_split
from digitnet.serve.app import create_app



def test_a_run_folder_holds_every_file_and_the_model_learned(synthetic_run):
    assert {p.name for p in synthetic_run.iterdir()} == RUN_FILES
    config, model = load_run(synthetic_run)
    assert config["recipe"]["name"] == "best" and config["data"]["name"] == "synthetic"
    rows = read_metrics(synthetic_run)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[-1]["test_accuracy"] > 0.9  # chance is 10%
    assert load_checkpoint(synthetic_run)["epoch"] == 3


@pytest.mark.parametrize("recipe", ["tutorial", "best", "cnn"])
def test_resume_is_bit_identical(tmp_path, synthetic_data, recipe, hand_over_data):
    common = dict(epochs=3, progress=False, lr=0.01 if recipe == "tutorial" else None)
    train(recipe, synthetic_data, out=tmp_path / "whole", **common)
    with pytest.raises(Crash):
        train(recipe, synthetic_data, out=tmp_path / "cut", on_epoch=crash_after(1), **common)
    resume(tmp_path / "cut", progress=False)
    whole, cut = load_file(str(tmp_path / "whole" / "model.safetensors")), load_file(str(tmp_path / "cut" / "model.safetensors"))
    assert all(torch.equal(whole[k], cut[k]) for k in whole)


def test_predict_reads_the_synthetic_classes(synthetic_run):
    predictor = Predictor(synthetic_run)
    images, labels = learnable_digits(50, seed=7)
    probabilities = predictor.probabilities(images)
    assert probabilities.shape == (50, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert (probabilities.argmax(axis=1) == labels).mean() > 0.9


def test_the_app_answers_health_predict_and_bad_requests(synthetic_run):
    client = TestClient(create_app(synthetic_run))
    health = client.get("/api/health").json()
    assert health["recipe"] == "best" and health["epochs"] == 3
    images, labels = learnable_digits(1, seed=3)
    answer = client.post("/api/predict", json={"pixels": images[0].tolist(), "prepare": False})
    assert answer.status_code == 200 and answer.json()["digit"] == int(labels[0])
    bad = client.post("/api/predict", content=b"not json", headers={"content-type": "application/json"})
    assert bad.status_code == 400 and "error" in bad.json()
    assert client.get("/").status_code == 200


def test_data_that_differs_from_the_runs_is_refused(synthetic_run, synthetic_data):
    import dataclasses

    config = load_config(synthetic_run)
    check_data_matches(config, synthetic_data, synthetic_run)  # the run's own data passes
    other = dataclasses.replace(synthetic_data, files={"t10k-images-idx3-ubyte": {"path": "x", "sha256": "00"}})
    with pytest.raises(DataError, match="does not match the hashes in .*config.json; give the run's own data"):
        check_data_matches(config, other, synthetic_run)


def test_augmentation_is_drawn_from_seed_epoch_and_step_alone(synthetic_data):
    from digitnet.data.augment import Augmenter
    from digitnet.data.batches import scale_images

    x, y = scale_images(synthetic_data.x_train[:64]), torch.as_tensor(synthetic_data.y_train[:64])
    a, b = Augmenter("affine+thickness", 0, x.device), Augmenter("affine+thickness", 0, x.device)
    first, labels = a(x, y, epoch=2, step=5)
    assert torch.equal(first, b(x, y, epoch=2, step=5)[0])  # a fresh augmenter (a resumed run) draws the same
    assert not torch.equal(first, a(x, y, epoch=2, step=6)[0]) and not torch.equal(first, a(x, y, epoch=3, step=5)[0])
    assert not torch.equal(first, Augmenter("affine+thickness", 1, x.device)(x, y, epoch=2, step=5)[0])
    assert first.shape == x.shape and first.min() >= -1 and first.max() <= 1 and torch.equal(labels, y)
    assert torch.equal(Augmenter("none", 0, x.device)(x, y, 2, 5)[0], x)


def test_augmentation_drawn_into_buffers_then_applied_is_the_augmentation(synthetic_data):
    """A replayed (CUDA graph) epoch draws every batch's random numbers into fixed buffers first and
    applies them inside the graph: that must be exactly what an eager step's augmenter computes, and
    apply alone must draw nothing (the generator's state then has no effect)."""
    from digitnet.data.augment import Augmenter, Draws
    from digitnet.data.batches import scale_images

    x, y = scale_images(synthetic_data.x_train[:37]), torch.as_tensor(synthetic_data.y_train[:37])
    for kind in ("affine", "affine+thickness", "affine+thickness+print", "affine+thickness+print+pairs"):
        augment = Augmenter(kind, 4, x.device)
        fresh = augment.draw(len(x), epoch=3, step=7)
        buffers = Draws(*(None if t is None else torch.full_like(t, 5) for t in fresh))
        augment.draw(len(x), epoch=3, step=7, out=buffers)
        augment.generator.manual_seed(12345)  # apply must not read it
        applied = augment.apply(x, y, buffers)
        expected = Augmenter(kind, 4, x.device)(x, y, epoch=3, step=7)
        assert torch.equal(applied[0], expected[0]) and torch.equal(applied[1], expected[1]), kind
        assert (buffers.thickness is None) == ("thickness" not in kind) and (buffers.swap is None) == ("print" not in kind)
        assert (buffers.pair is None) == ("pairs" not in kind)


def test_cnn_recipe_trains_a_convnet_that_learns(tmp_path, synthetic_data):
    layouts = []

    def watch(record, state):  # on the CPU the convnet trains channels-last, oneDNN's own layout
        convs = [m for m in state.model.modules() if isinstance(m, torch.nn.Conv2d)]
        layouts.append(all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs))

    result = train("cnn", synthetic_data, epochs=2, out=tmp_path / "run", progress=False, on_epoch=watch)
    assert layouts == [True, True]
    config, model = load_run(tmp_path / "run")
    x = torch.as_tensor(synthetic_data.x_test[:50], dtype=torch.float32).reshape(50, -1) / 127.5 - 1
    with torch.no_grad():  # the file holds the same weights, whatever their layout in memory was
        torch.testing.assert_close(model(x), result.model(x), rtol=1e-4, atol=1e-4)
    assert config["architecture"]["type"] == "cnn" and config["recipe"]["augment"] == "affine+thickness+print+pairs"
    assert any(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    assert result.history[-1].test_accuracy > 0.5  # chance is 10%


@pytest.mark.parametrize("recipe", ["tutorial", "best", "cnn"])
def test_a_reloaded_run_evaluates_to_the_bits_its_last_epoch_recorded(tmp_path, synthetic_data, recipe):
    """What `digitnet evaluate` computes from the run folder's model, against metrics.csv's last row."""
    train(recipe, synthetic_data, out=tmp_path / "run", epochs=1, progress=False)
    config, model = load_run(tmp_path / "run")
    evaluation = evaluate_on_test_split(model, synthetic_data, config, torch.device("cpu"))
    last = read_metrics(tmp_path / "run")[-1]
    assert (evaluation.loss, evaluation.accuracy) == (last["test_loss"], last["test_accuracy"])


def test_a_reloaded_convnet_is_evaluated_with_the_kernels_training_evaluated_it_with(tmp_path, synthetic_data):
    """The run folder holds the weights in one memory layout; training evaluated the convnet in its own
    (channels-last on the CPU), whose kernels round differently: `digitnet evaluate` must use training's,
    or its loss leaves metrics.csv's in the last bits. Compared here on the logits themselves."""
    from digitnet.model import pass_rows
    from digitnet.training import prepare_test_tensors

    cpu = torch.device("cpu")
    x_test, _ = prepare_test_tensors(synthetic_data, cpu)
    during_training = []

    def logits_after_training(record, state):
        state.model.eval()
        with torch.no_grad():  # the first pass of training's evaluation, again
            during_training.append(state.model(x_test[: pass_rows(state.model)]))
        state.model.train()

    train("cnn", synthetic_data, out=tmp_path / "run", epochs=1, progress=False, on_epoch=logits_after_training)
    config, model = load_run(tmp_path / "run")
    reevaluated = []
    model[-1].register_forward_hook(lambda module, args, out: reevaluated.append(out))
    evaluate_on_test_split(model, synthetic_data, config, cpu)
    first_pass = next(out for out in reevaluated if len(out) > 1)  # (pass_rows probes with one example first)
    assert torch.equal(first_pass, during_training[0])
