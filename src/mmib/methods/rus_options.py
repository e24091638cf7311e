"""The typed options (:mod:`mmib.methods.options`) of ``rus`` (:mod:`mmib.methods.rus`, ``docs/methods/rus.md``).
Defaults: ``conf/method/rus.yaml`` (``tests/methods/test_options.py`` compares them key by key).

The per-modality blocks (``targets``, ``time_start``, ``augment``) are keyed by the data set's modality names, so
they are mappings kept as given; :class:`~mmib.methods.rus.RUSMethod` checks their keys against the data set and
their values (one-line errors naming ``method.<block>.<modality>``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from mmib.methods.options import OptimOptions, optim_field


@dataclass(frozen=True)
class RUSWeights:
    """``method.weights``: the λ of each loss term (:class:`~mmib.objectives.rus.RUSLoss`). U is 3 since issue 20
    (the design's 1 in the ``rus-literal`` variant); ``hsic``: L_hsic between components (off); ``syn``: L_syn of
    ``synergy: unimodal_hsic``."""

    R: float = 1.0
    U: float = 3.0
    S: float = 1.0
    orth: float = 1.0
    cross: float = 0.1
    hsic: float = 0.0
    syn: float = 3.0


@dataclass(frozen=True)
class RUSOptions:
    """Every option of ``rus``; the comments of ``conf/method/rus.yaml`` say what each does."""

    hidden_dim: int = 64
    component_dim: int = 32
    head_hidden: int = 64
    n_heads: int = 4
    temporal: Literal["transformer", "gru"] = "transformer"
    temporal_layers: int = 1
    fusion: Literal["cross_attention", "concat"] = "cross_attention"
    fusion_layers: int = 1
    interaction: Literal["product", "none"] = "product"
    vector_tokens: int = 16
    positions: Literal["seconds", "index"] = "seconds"
    time_start: dict[str, Any] = field(default_factory=dict)  # {modality: seconds}
    time_resolution_s: float = 0.05
    synergy: Literal["literal", "unimodal_hsic", "interaction"] = "unimodal_hsic"
    synergy_partners: int = 4  # interaction: K random in-batch derangements per view in training (1 + K passes)
    synergy_bank: int = 64  # interaction: R training inputs kept (and saved) as the evaluation reference
    synergy_source: Literal["fusion", "unique", "decoded"] = "fusion"  # what the S path reads (rus.yaml)
    decoded_centre: Literal["running", "redundant", "other", "cluster"] = "running"  # synergy_source decoded: how t_m is centred
    decoded_head: Literal["mlp", "linear"] = "mlp"  # synergy_source decoded: Head_S after the product
    weights: RUSWeights = field(default_factory=RUSWeights)
    syn_grad: Literal["fusion", "all"] = "fusion"
    s_grad: Literal["all", "fusion"] = "all"
    hsic_pairs: Literal["modality", "all"] = "modality"
    temperature_r: float = 0.1
    temperature_s: float = 0.1
    targets: dict[str, Any] = field(default_factory=dict)  # {modality: target word}
    cross_min: Literal["neg_sim", "grl", "none"] = "neg_sim"
    neg_sim_form: Literal["abs", "signed"] = "abs"
    neg_sim_eps: float = 1.0e-3
    projection_seed: int = 0
    grl_coeff: float = 1.0
    augment: dict[str, Any] = field(default_factory=dict)  # {modality: "default" | [{name, p, ...}, ...]}
    hrf_delay_s: float = 0.0
    hrf_delay_scope: str = "s_view"  # s_view | both (checked by the method: an unknown word names the valid ones)
    augment_seed: int | None = None
    optim: OptimOptions = optim_field(name="adamw", lr=1.0e-3, weight_decay=1.0e-4)
