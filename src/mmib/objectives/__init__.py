"""Objectives: pure tensor in, :class:`LossOutput` out. One module per objective or estimator family."""

from mmib.objectives.base import LossOutput, Temperature, check_embeddings
from mmib.objectives.clip import PairwiseCLIPLoss, info_nce, mean_cosine_score

__all__ = ["LossOutput", "Temperature", "check_embeddings", "PairwiseCLIPLoss", "info_nce", "mean_cosine_score"]
