"""Neural building blocks: encoders per modality kind, projection heads, fusion modules."""

from mmib.nn.encoders import ENCODERS, build_encoder
from mmib.nn.heads import MLP, ProjectionHead

__all__ = ["ENCODERS", "MLP", "ProjectionHead", "build_encoder"]
