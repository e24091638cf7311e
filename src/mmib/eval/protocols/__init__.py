"""Evaluation protocols, one module each. Each one talks to the method through the Method interface only (``embed``, and where
``Method.capabilities()`` says so ``fuse``, ``components``, ``predict``; ``score`` for retrieval), so every protocol
works for every method; a representation a method does not have is skipped with a note.

========================= ==============================================================================================
``probe``                 CE-trained linear probe and/or the papers' 4-layer MLP on frozen representations
                          (``concat`` | ``fused`` | ``component:<name>`` | ``components``), raw-feature baseline,
                          the method's own predictions when it has ``predict``
``pair_probe``            same-group pair classification (OVA-IB's trajectory-pair task on Vision & Touch): seeded,
                          balanced pairs of each split (:func:`~mmib.data.loaders.vision_touch.trajectory_pairs` on
                          the data set's ``groups``), features ``[z_a, z_b, |z_a − z_b|, z_a ⊙ z_b]`` of a frozen
                          representation, the 4-layer MLP (or linear) probe early-stopped on val
``subsets``               pretrain once with all modalities, probe every non-empty subset of modalities (2^M − 1;
                          OVA-IB Tables 2 and 5–11): table + heatmap
``retrieval``             queries = a set of modalities, candidates = another (``resp+ecg->bvp``), scored with the
                          method's own ``score``; mAP, R@1/5/10, MRR, median rank, and the Symile paper's
                          ``class_top1`` / ``acc_1_of_10``, chance beside
``info_probe``            representation × ground-truth latent matrix of probe accuracy (R² for continuous latents)
                          with chance levels: which information each representation holds and what leaks where
``plots``                 training curves, t-SNE (and UMAP with the ``viz`` extra) coloured by label or latent
========================= ==============================================================================================

``representations`` (a list) also accepts its singular ``representation`` (one name or a list) in the ``probe`` and
``pair_probe`` protocols, as the ``--representation`` flag and the ``subsets`` option are spelt; when both are given
(``--representation`` always sets the plural) the singular wins: ``--option probe.representation=fused``.

A protocol returns a JSON-able dict ``{"protocol", "name", "options", "rows": [...], "notes": [...], "plots": {...}}``;
every row has an ``id`` (stable across runs, used by the bench aggregation), a ``source`` (``method`` or ``raw``) and
its ``metrics``.
"""

from __future__ import annotations

import importlib
from typing import Any

from mmib.eval.protocols.base import (
    COMPARE_ALL,
    COMPARE_PRIMARY,
    Protocol,
    ProtocolRegistry,
    parse_options,
    primary_metric,
)
from mmib.eval.protocols.info_probe import InfoProbeOptions, run_info_probe
from mmib.eval.protocols.oom import OOMOptions, run_oom
from mmib.eval.protocols.pair_probe import PairProbeOptions, pair_features, run_pair_probe
from mmib.eval.protocols.plots import PlotOptions, run_plots
from mmib.eval.protocols.probe import ProbeOptions, run_probe
from mmib.eval.protocols.registry import (
    BUILTIN_PROTOCOLS,
    DEFAULT_PROTOCOLS,
    PROTOCOLS,
    ProtocolSpec,
    parse_protocols,
    run_protocol,
)
from mmib.eval.protocols.retrieval import RetrievalOptions, retrieval_directions, run_retrieval, score_matrix
from mmib.eval.protocols.subsets import SubsetOptions, modality_subsets, run_subsets

#: names that need torch, imported when first used (``mmib report`` reads the registry without them)
_LAZY = {"EvalContext": "mmib.eval.protocols.context", "needs_capability": "mmib.eval.representations"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mmib.eval.protocols' has no attribute '{name}'")


__all__ = ["BUILTIN_PROTOCOLS", "COMPARE_ALL", "COMPARE_PRIMARY", "DEFAULT_PROTOCOLS", "PROTOCOLS", "EvalContext",
           "InfoProbeOptions", "OOMOptions", "PairProbeOptions", "PlotOptions", "ProbeOptions", "Protocol",
           "ProtocolRegistry", "ProtocolSpec", "RetrievalOptions", "SubsetOptions", "modality_subsets",
           "needs_capability", "pair_features", "parse_options", "parse_protocols", "primary_metric",
           "retrieval_directions", "run_info_probe", "run_oom", "run_pair_probe", "run_plots", "run_probe",
           "run_protocol", "run_retrieval", "run_subsets", "score_matrix"]
