import pytest

from digitnet.errors import ConfigError
from digitnet.recipes import get_recipe


def test_seed_recipe_is_the_tutorial():
    r = get_recipe("seed")
    assert (r.loss, r.optimizer, r.lr, r.batch_size, r.momentum, r.weight_decay, r.schedule, r.epochs) == (
        "mse-sum", "sgd", 0.001, 512, 0.0, 0.0, "constant", 30)


def test_overrides_and_none_ignored():
    r = get_recipe("seed", lr=0.01, epochs=None, batch_size=64)
    assert (r.lr, r.epochs, r.batch_size) == (0.01, 30, 64)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"lr": 0}, "--lr"), ({"batch_size": 0}, "--batch-size"), ({"epochs": 0}, "--epochs"),
     ({"momentum": 1.5}, "--momentum"), ({"label_smoothing": 0.1}, "only to --loss cross-entropy"),
     ({"loss": "hinge"}, "--loss 'hinge'")],
)
def test_bad_values(overrides, message):
    with pytest.raises(ConfigError, match=message):
        get_recipe("seed", **overrides)


def test_unknown_recipe():
    with pytest.raises(ConfigError, match="choose one of seed, best"):
        get_recipe("fastest")
