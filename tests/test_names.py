"""One canonical name per idea in each registry (activations, losses, initialisers), old
spellings accepted through one explicit alias table per registry, each resolved with a
one-line note naming the canonical name."""

from __future__ import annotations

import pytest

from tinygrad_mnist.cli.main import build_parser
from tinygrad_mnist.nn.activations import ACTIVATION_ALIASES, ACTIVATIONS, activation_by_name, activation_name
from tinygrad_mnist.nn.conventions import resolve_alias
from tinygrad_mnist.nn.init import INITIALIZER_ALIASES, INITIALIZERS, initializer, initializer_name
from tinygrad_mnist.nn.losses import LOSS_ALIASES, LOSSES, loss_by_name, loss_name

REGISTRIES = {
    "activation": (ACTIVATIONS, ACTIVATION_ALIASES, activation_name),
    "loss": (LOSSES, LOSS_ALIASES, loss_name),
    "initializer": (INITIALIZERS, INITIALIZER_ALIASES, initializer_name),
}


@pytest.mark.parametrize("what", sorted(REGISTRIES))
def test_each_idea_has_one_canonical_name_and_every_alias_names_one_of_them(what):
    names, aliases, _ = REGISTRIES[what]
    assert len(set(names.values())) == len(names)             # no two names for one idea
    assert not set(aliases) & set(names)
    assert set(aliases.values()) <= set(names)


@pytest.mark.parametrize("what", sorted(REGISTRIES))
def test_an_alias_resolves_to_its_canonical_name_with_one_note(what, capsys):
    names, aliases, resolve = REGISTRIES[what]
    for old, new in aliases.items():
        assert resolve(old) == new
        err = capsys.readouterr().err
        assert err == f"note: {what} name {old!r} is deprecated; it now means {new!r} (use that name)\n"
    for name in names:
        assert resolve(name) == name
    assert capsys.readouterr().err == ""


def test_the_lookups_build_the_canonical_object_for_an_alias(capsys):
    assert type(activation_by_name("linear")) is type(activation_by_name("identity"))
    assert type(loss_by_name("ce")) is type(loss_by_name("cross_entropy"))
    assert initializer("xavier_normal") is INITIALIZERS["glorot_normal"]
    assert capsys.readouterr().err.count("note:") == 3
    assert resolve_alias("relu", ACTIVATION_ALIASES, "activation") == "relu"
    with pytest.raises(ValueError, match="unknown activation 'linearr'"):
        activation_by_name("linearr")


def test_train_init_accepts_an_old_spelling_as_its_canonical_name(capsys):
    assert build_parser().parse_args(["train", "--init", "kaiming_uniform"]).init == "he_uniform"
    assert "now means 'he_uniform'" in capsys.readouterr().err
    assert build_parser().parse_args(["train", "--init", "glorot_uniform"]).init == "glorot_uniform"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--init", "xavier_normal_"])
