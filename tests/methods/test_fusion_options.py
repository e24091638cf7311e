"""mmib.methods.fusion_options: the typed options of the supervised fusion baselines, their inherited defaults
and their checks (beta, kl_reduction), built from a config mapping."""

import math

import pytest

from mmib.errors import MMIBError
from mmib.methods.fusion_options import (
    CMIBOptions,
    ConcatOptions,
    EMIBOptions,
    FiLMOptions,
    LMIBOptions,
    VIBOptions,
    check_kl_reduction,
)
from mmib.methods.options import build_options, options_dict
from mmib.objectives.vib import LATENT_REDUCTIONS


def test_defaults_follow_the_inheritance_chain():
    assert ConcatOptions().head_hidden == [512] and ConcatOptions().head_hidden is not ConcatOptions().head_hidden
    assert FiLMOptions().film_target is None and FiLMOptions().fused_dim == 256
    assert VIBOptions().kl_reduction == "sum" and EMIBOptions().kl_reduction == "mean"  # Mai et al.: the mean
    assert (EMIBOptions().fused_dim, LMIBOptions().fused_dim, CMIBOptions().fused_dim) == (256, 64, 64)
    assert options_dict(VIBOptions())["optim"] == {**options_dict(ConcatOptions())["optim"]}


def test_built_from_a_config_with_conversion_and_checks():
    o = build_options(VIBOptions, {"beta": 0, "latent_dim": 8, "head_hidden": [4, 4]}, "method 'vib'")
    assert o.beta == 0.0 and isinstance(o.beta, float) and o.latent_dim == 8 and o.head_hidden == [4, 4]
    for bad in (-0.1, math.inf, math.nan):
        with pytest.raises(MMIBError, match="method.beta must be a finite number >= 0"):
            VIBOptions(beta=bad)
    with pytest.raises(MMIBError, match="method.kl_reduction must be one of sum, mean, got 'max'"):
        build_options(LMIBOptions, {"kl_reduction": "max"}, "method 'lmib'")
    with pytest.raises(MMIBError, match="unknown"):
        build_options(ConcatOptions, {"latent_dim": 8}, "method 'concat'")  # a VIB key on concat


def test_check_kl_reduction_accepts_exactly_the_latent_reductions():
    assert set(LATENT_REDUCTIONS) == {"sum", "mean"}
    for r in LATENT_REDUCTIONS:
        assert check_kl_reduction(r) == r
    with pytest.raises(MMIBError, match="kl_reduction"):
        check_kl_reduction("Sum")
