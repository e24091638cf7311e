"""Objectives: pure tensor in, :class:`LossOutput` out. One module per objective or estimator family."""

from mmib.objectives.base import LossOutput, Temperature, check_embeddings
from mmib.objectives.clip import PairwiseCLIPLoss, info_nce, mean_cosine_score

#: alignment objectives by method name; each has forward({modality: (N, d)}) -> LossOutput and score()
ALIGNMENT_OBJECTIVES: dict[str, type] = {"clip": PairwiseCLIPLoss}

__all__ = ["ALIGNMENT_OBJECTIVES", "LossOutput", "Temperature", "check_embeddings", "PairwiseCLIPLoss", "info_nce", "mean_cosine_score"]
