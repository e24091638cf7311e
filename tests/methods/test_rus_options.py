"""mmib.methods.rus_options: the typed options of ``rus``: the nested loss weights, the word-valued options
(checked against their allowed words), the per-modality blocks kept as given, and the optimizer defaults."""

import pytest

from mmib.errors import MMIBError
from mmib.methods.options import build_options, options_dict
from mmib.methods.rus_options import RUSOptions, RUSWeights


def _build(cfg):
    return build_options(RUSOptions, cfg, "method 'rus'")


def test_defaults():
    o = RUSOptions()
    assert o.weights == RUSWeights() and (o.weights.U, o.weights.hsic, o.weights.syn) == (3.0, 0.0, 3.0)
    assert (o.synergy, o.cross_min, o.positions) == ("unimodal_hsic", "neg_sim", "seconds")
    d = options_dict(o)
    assert d["optim"]["name"] == "adamw" and d["optim"]["lr"] == 1.0e-3 and d["optim"]["weight_decay"] == 1.0e-4
    assert o.targets == {} and o.targets is not RUSOptions().targets  # a fresh mapping per instance


def test_nested_weights_and_per_modality_blocks():
    o = _build({"weights": {"U": 1, "hsic": 0.5}, "time_start": {"eeg": -0.5}, "augment": {"eeg": "default"}})
    assert o.weights == RUSWeights(U=1.0, hsic=0.5) and isinstance(o.weights.U, float)
    assert o.time_start == {"eeg": -0.5} and o.augment == {"eeg": "default"}  # kept as given, checked by the method
    with pytest.raises(MMIBError, match=r"weights\.T"):
        _build({"weights": {"T": 1.0}})


@pytest.mark.parametrize("key,word", [("temporal", "lstm"), ("fusion", "sum"), ("synergy", "pid"),
                                      ("cross_min", "mine"), ("positions", "minutes"), ("syn_grad", "none")])
def test_word_options_refuse_an_unknown_word(key, word):
    assert _build({key: getattr(RUSOptions(), key)}) == RUSOptions()
    with pytest.raises(MMIBError, match=f"method.{key} must be one of .*got '{word}'"):
        _build({key: word})
