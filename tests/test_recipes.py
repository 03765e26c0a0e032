import pytest

from digitnet.errors import ConfigError
from digitnet.recipes import get_recipe, recipe_from_dict


def test_tutorial_recipe_is_the_tutorials_numbers():
    r = get_recipe("tutorial")
    assert (r.loss, r.optimizer, r.lr, r.batch_size, r.momentum, r.weight_decay, r.schedule, r.epochs) == (
        "mse-sum", "sgd", 0.001, 512, 0.0, 0.0, "constant", 30)


def test_overrides_and_none_ignored():
    r = get_recipe("tutorial", lr=0.01, epochs=None, batch_size=64)
    assert (r.lr, r.epochs, r.batch_size) == (0.01, 30, 64)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"lr": 0}, "--lr"), ({"batch_size": 0}, "--batch-size"), ({"epochs": 0}, "--epochs"),
     ({"momentum": 1.5}, "--momentum"), ({"label_smoothing": 0.1}, "only to --loss cross-entropy"),
     ({"loss": "hinge"}, "--loss 'hinge'")],
)
def test_bad_values(overrides, message):
    with pytest.raises(ConfigError, match=message):
        get_recipe("tutorial", **overrides)


def test_unknown_recipe():
    with pytest.raises(ConfigError, match="choose one of tutorial, best"):
        get_recipe("fastest")


def test_seed_is_an_alias_of_tutorial():
    assert get_recipe("seed") == get_recipe("tutorial")
    assert recipe_from_dict({**get_recipe("tutorial").to_dict(), "name": "seed"}).name == "tutorial"
