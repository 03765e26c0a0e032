import json
import math

import pytest
import torch

from digitnet.errors import ModelFileError
from digitnet.model import MAX_PASS_ROWS, PASS_BYTES, architecture, build_model, load_model, pass_rows, save_model
from digitnet.tensorfile import tensor_digest


def test_shapes_and_layers():
    model = build_model()
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(784, 256), (256, 128), (128, 10)]
    assert [type(m).__name__ for m in model] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert model(torch.zeros(5, 784)).shape == (5, 10)
    assert build_model((32,))(torch.zeros(2, 784)).shape == (2, 10)


def test_glorot_uniform_ranges_and_zero_biases():
    model = build_model(seed=1)
    for layer in (m for m in model if isinstance(m, torch.nn.Linear)):
        limit = math.sqrt(6 / (layer.in_features + layer.out_features))
        w = layer.weight
        assert w.abs().max() <= limit
        assert w.abs().max() > 0.99 * limit  # the whole range is used
        assert abs(w.mean().item()) < 0.05 * limit
        assert w.var().item() == pytest.approx(limit**2 / 3, rel=0.1)  # variance of U(-l, l)
        assert torch.count_nonzero(layer.bias) == 0


def test_seeded_init():
    a, b, c = build_model(seed=7), build_model(seed=7), build_model(seed=8)
    assert torch.equal(a[0].weight, b[0].weight) and not torch.equal(a[0].weight, c[0].weight)


def test_save_load_roundtrip(tmp_path):
    model = build_model(seed=2)
    save_model(model, tmp_path / "m.safetensors", architecture())
    loaded = load_model(tmp_path / "m.safetensors", architecture())
    x = torch.randn(3, 784)
    assert torch.equal(model(x), loaded(x))
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def _saved(tmp_path):
    path = tmp_path / "m.safetensors"
    save_model(build_model(), path, architecture())
    return path


def test_truncated_file(tmp_path):
    path = _saved(tmp_path)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ModelFileError, match="not a readable safetensors file"):
        load_model(path)


def test_architecture_mismatch(tmp_path):
    with pytest.raises(ModelFileError, match=r"weights are for layers \[784, 256, 128, 10\]"):
        load_model(_saved(tmp_path), architecture((64,)))


def _rewrite_metadata(path, resign=True, **changes):
    """Change metadata entries; with resign, record the digest of the changed file (as a buggy or
    hostile writer would), so the checks behind the digest are reached."""
    from safetensors.torch import load_file, save_file

    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
    tensors = load_file(str(path))
    metadata.update(changes)
    if resign:
        metadata["digest"] = tensor_digest(tensors, {k: v for k, v in metadata.items() if k != "digest"})
    save_file(tensors, str(path), metadata=metadata)


def test_changed_metadata_is_refused(tmp_path):
    path = _saved(tmp_path)
    _rewrite_metadata(path, resign=False, architecture=json.dumps(architecture((256, 64))))
    with pytest.raises(ModelFileError, match="the contents do not match their recorded SHA-256"):
        load_model(path)


def test_format_version_1_files_are_still_read(tmp_path):
    """Version 1 recorded "sha256" over the tensors alone; such files load, and a flipped weight in
    one is still refused."""
    from safetensors.torch import save_file

    model = build_model(seed=3)
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    metadata = {"architecture": json.dumps(architecture()), "format": "digitnet-mlp", "format_version": "1",
                "sha256": tensor_digest(tensors)}
    save_file(tensors, str(tmp_path / "v1.safetensors"), metadata=metadata)
    x = torch.randn(2, 784)
    assert torch.equal(load_model(tmp_path / "v1.safetensors")(x), model(x))
    tensors["0.bias"][0] = 1.0
    save_file(tensors, str(tmp_path / "v1.safetensors"), metadata=metadata)
    with pytest.raises(ModelFileError, match="do not match their recorded SHA-256"):
        load_model(tmp_path / "v1.safetensors")
    metadata.pop("sha256")
    save_file(tensors, str(tmp_path / "v1.safetensors"), metadata=metadata)
    with pytest.raises(ModelFileError, match="do not match their recorded SHA-256"):
        load_model(tmp_path / "v1.safetensors")


def test_future_format_version(tmp_path):
    path = _saved(tmp_path)
    _rewrite_metadata(path, format_version="99")
    with pytest.raises(ModelFileError, match="version 99 is newer"):
        load_model(path)


def test_metadata_that_does_not_match_the_tensors(tmp_path):
    path = _saved(tmp_path)
    _rewrite_metadata(path, architecture=json.dumps(architecture((256, 64))))
    with pytest.raises(ModelFileError, match=r"tensor 2.weight is torch.float32 \(128, 256\), expected"):
        load_model(path)


def test_not_a_model(tmp_path):
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model(tmp_path / "absent.safetensors")
    (tmp_path / "x.safetensors").write_bytes(b"garbage")
    with pytest.raises(ModelFileError, match="not a readable"):
        load_model(tmp_path / "x.safetensors")


def test_hidden_sizes_validated():
    with pytest.raises(ValueError):
        build_model((0,))


def test_a_flipped_byte_in_the_weights_is_refused(tmp_path):
    path = tmp_path / "m.safetensors"
    save_model(build_model(seed=0), path, architecture())
    data = bytearray(path.read_bytes())
    data[-100] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="the contents do not match their recorded SHA-256"):
        load_model(path)


def test_cnn_pools_before_its_relu_computing_exactly_what_relu_then_pool_does():
    from torch import nn

    model = build_model(kind="cnn", seed=4)
    modules = list(model)
    for pool in [i for i, m in enumerate(modules) if isinstance(m, nn.MaxPool2d)]:
        assert isinstance(modules[pool + 1], nn.ReLU)  # the cheap order: ReLU on a quarter of the values
        modules[pool], modules[pool + 1] = modules[pool + 1], modules[pool]
    textbook = nn.Sequential(*modules)  # the same parameter objects, in the usual conv-ReLU-pool order
    x = torch.rand(16, 784, generator=torch.Generator().manual_seed(0)) * 2 - 1
    ours = model(x)
    ours.square().sum().backward()
    ours_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    theirs = textbook(x)
    theirs.square().sum().backward()
    assert torch.equal(ours, theirs)
    assert all(torch.equal(a, p.grad) for a, p in zip(ours_grads, textbook.parameters()))


def _widest_output(model) -> int:
    x, widest = torch.zeros(1, 784), 0
    for layer in model:
        x = layer(x)
        widest = max(widest, x.numel())
    return widest


@pytest.mark.parametrize(("options", "rows"), [({}, 4096), ({"kind": "cnn"}, 128), ({"hidden": (65536,)}, 64),
                                               ({"hidden": (8, 3000)}, 1024)])
def test_evaluation_passes_keep_the_widest_layer_output_within_its_budget(options, rows):
    model = build_model(**options)
    assert pass_rows(model) == rows
    widest_bytes = 4 * _widest_output(model)
    assert rows * widest_bytes <= PASS_BYTES  # within the budget
    assert rows == MAX_PASS_ROWS or 2 * rows * widest_bytes > PASS_BYTES  # and the largest power of two that is

