"""A malformed config.json (missing keys, wrong types, NaN, deep nesting, zero classes) gets one
line naming the file and the problem from evaluate, predict, serve and resume; never a traceback."""

import json
import math
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from digitnet.errors import DigitnetError
from digitnet.predict import Predictor
from digitnet.runs import evaluate_run, load_config, resume
from digitnet.serve.app import create_app

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**30, 10**30) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


def _paths(value, prefix=()):
    """Every key path into a JSON value (dict keys and list indices)."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def _mutated(config, path, action, value):
    config = json.loads(json.dumps(config))
    if not path:
        return value
    parent = config
    for key in path[:-1]:
        parent = parent[key]
    if action == "delete":
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return config


def _use_every_way(run):
    """What evaluate, predict, serve and resume do with a run folder."""
    Predictor(run).probabilities(np.zeros((1, 28, 28), np.uint8))
    client = TestClient(create_app(run))
    for response in (client.get("/api/health"), client.post("/api/predict", json={"pixels": [[0] * 28] * 28})):
        assert response.status_code < 500, response.text
    for call in (lambda: evaluate_run(run, progress=False), lambda: resume(run, progress=False)):
        try:
            call()
        except DigitnetError as exc:  # the synthetic data set cannot be reloaded by name: a one-line DataError
            assert "\n" not in str(exc)


@pytest.fixture(scope="module")
def fuzz_run(synthetic_run, tmp_path_factory):
    run = shutil.copytree(synthetic_run, tmp_path_factory.mktemp("fuzz") / "run")
    return run, json.loads((run / "config.json").read_text())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_malformed_configs_get_one_line_errors(fuzz_run, data):
    run, original = fuzz_run
    path = data.draw(st.sampled_from(list(_paths(original))))
    action = data.draw(st.sampled_from(["delete", "replace"]) if path else st.just("replace"))
    config = _mutated(original, path, action, data.draw(JSON_VALUES))
    (run / "config.json").write_text(json.dumps(config))
    try:
        _use_every_way(run)
        event("accepted")
    except DigitnetError as exc:
        event("one-line error")
        message = str(exc)
        assert "\n" not in message and ("config.json" in message or "model.safetensors" in message), message
    finally:
        (run / "config.json").write_text(json.dumps(original))


@pytest.mark.parametrize("text, problem", [
    ("[" * 100_000 + "]" * 100_000, "unreadable or not JSON (nested too deeply)"),
    ('{"recipe": NaN}', "architecture must be a JSON object"),
    ("[]", "must hold a JSON object"),
])
def test_hostile_config_texts(fuzz_run, text, problem):
    run, original = fuzz_run
    (run / "config.json").write_text(text)
    try:
        with pytest.raises(DigitnetError, match=f"config.json: {problem}".replace("(", r"\(").replace(")", r"\)")):
            load_config(run)
    finally:
        (run / "config.json").write_text(json.dumps(original))


@pytest.mark.parametrize("change, problem", [
    (lambda c: c["architecture"].update(classes=0), "architecture must have 10 classes"),
    (lambda c: c["architecture"].update(hidden=[10**12]), "architecture an mlp needs 784 inputs"),
    (lambda c: c["recipe"].update(lr=math.nan), "recipe: --lr nan: must be a finite number"),
    (lambda c: c.update(seed="0"), "seed must be an integer"),
    (lambda c: c["data"].update(class_names=[]), "data.class_names must be 10 names"),
    (lambda c: c.pop("recipe"), "lacks or garbles a training setting"),
])
def test_each_malformed_entry_is_named(fuzz_run, change, problem):
    run, original = fuzz_run
    config = json.loads(json.dumps(original))
    change(config)
    (run / "config.json").write_text(json.dumps(config))
    try:
        with pytest.raises(DigitnetError, match=problem.replace("(", r"\(")):
            load_config(run)
    finally:
        (run / "config.json").write_text(json.dumps(original))
