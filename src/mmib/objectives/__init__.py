"""Objectives: pure tensor in, :class:`LossOutput` out. One module per objective or estimator family."""

from mmib.objectives.base import LossOutput, Temperature, check_embeddings
from mmib.objectives.clip import PairwiseCLIPLoss, info_nce, mean_cosine_score
from mmib.objectives.clip_ib import PairwiseCLIPIBLoss
from mmib.objectives.gram import DirectTemperature, GRAMLoss, gram_volume
from mmib.objectives.ova_ib import OVAIBLoss, minimality_term, projection_score
from mmib.objectives.symile import SymileLoss, mip, mip_score
from mmib.objectives.triangle import TriangleLoss, triangle_area

#: alignment objectives by method name (the method wrapper builds them from config keys = constructor kwargs)
ALIGNMENT_OBJECTIVES = {
    "clip": PairwiseCLIPLoss,
    "clip_ib": PairwiseCLIPIBLoss,
    "symile": SymileLoss,
    "gram": GRAMLoss,
    "triangle": TriangleLoss,
    "ova_ib": OVAIBLoss,
}

__all__ = [
    "LossOutput",
    "Temperature",
    "check_embeddings",
    "PairwiseCLIPLoss",
    "info_nce",
    "mean_cosine_score",
    "ALIGNMENT_OBJECTIVES",
    "PairwiseCLIPIBLoss",
    "SymileLoss",
    "mip",
    "mip_score",
    "GRAMLoss",
    "DirectTemperature",
    "gram_volume",
    "TriangleLoss",
    "triangle_area",
    "OVAIBLoss",
    "projection_score",
    "minimality_term",
]
