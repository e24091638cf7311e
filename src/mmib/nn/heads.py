"""MLPs and projection heads."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "leaky_relu": nn.LeakyReLU, "tanh": nn.Tanh, "silu": nn.SiLU}


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation '{name}'; valid: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class MLP(nn.Sequential):
    """Linear → (norm) → activation → dropout blocks, then a final linear layer.

    Args:
        in_dim, out_dim: input and output sizes.
        hidden: sizes of the hidden layers (``[]`` → a single linear map).
        act: activation name; norm: ``"batch"``, ``"layer"`` or ``None``; dropout: after each hidden activation.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden: Sequence[int] = (),
        act: str = "relu",
        norm: str | None = None,
        dropout: float = 0.0,
    ) -> None:
        if in_dim < 1 or out_dim < 1:
            raise ValueError(f"MLP: in_dim and out_dim must be >= 1, got {in_dim}, {out_dim}")
        layers: list[nn.Module] = []
        d = in_dim
        for h in hidden:
            layers.append(nn.Linear(d, h))
            if norm == "batch":
                layers.append(nn.BatchNorm1d(h))
            elif norm == "layer":
                layers.append(nn.LayerNorm(h))
            elif norm is not None:
                raise ValueError(f"MLP: norm must be 'batch', 'layer' or None, got {norm!r}")
            layers.append(activation(act))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            d = h
        layers.append(nn.Linear(d, out_dim))
        super().__init__(*layers)
        self.in_dim, self.out_dim = in_dim, out_dim


class ProjectionHead(MLP):
    """n-layer MLP projection head ``in_dim → ... → out_dim`` (the OVA-IB paper uses 3 layers, 256 → 256)."""

    def __init__(self, in_dim: int, out_dim: int, n_layers: int = 3, hidden_dim: int | None = None, act: str = "relu",
                 norm: str | None = None) -> None:
        if n_layers < 1:
            raise ValueError(f"ProjectionHead: n_layers must be >= 1, got {n_layers}")
        h = hidden_dim or out_dim
        super().__init__(in_dim, out_dim, hidden=[h] * (n_layers - 1), act=act, norm=norm)


class BatchCentre(nn.Module):
    """Subtract the per-dimension mean over the batch (training) or its running average (evaluation), then add a
    learned offset (``offset=True``, initialized at 0) — a BatchNorm without the division by the standard deviation.

    Why (docs/methods/symile.md, "Centred embeddings"): the outputs of a fresh ReLU MLP head share one direction
    (rows of a batch at cosine ≈ 0.98, measured), so a multilinear score of M such embeddings is dominated by that
    common part, and — our reading, not measured — the M-th order product of the rows' deviations, the only signal of
    a higher-order dependence, starts M − 1 orders smaller. Centring removes the common part (and, measured, lets
    Symile learn a 3-bit parity at M = 4); the learned offset, started at 0, lets training put a common part back
    (it turns the M-way product into lower-order terms such as weighted pairwise products).

    A state dict without this module's entries (a checkpoint written before the option existed) loads as the
    identity: running mean 0 and offset 0 (that checkpoint's behaviour).
    """

    def __init__(self, dim: int, offset: bool = True, momentum: float = 0.1) -> None:
        super().__init__()
        if dim < 1:
            raise ValueError(f"BatchCentre: dim must be >= 1, got {dim}")
        if not 0.0 < momentum <= 1.0:
            raise ValueError(f"BatchCentre: momentum must lie in (0, 1], got {momentum}")
        self.dim, self.momentum = dim, float(momentum)
        self.register_buffer("running_mean", torch.zeros(dim))
        self.offset = nn.Parameter(torch.zeros(dim)) if offset else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"BatchCentre: expected a (batch, {self.dim}) tensor, got shape {tuple(x.shape)}")
        if self.training and x.shape[0] > 1:
            mean = x.mean(0)
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), self.momentum)
        else:  # evaluation, or a batch of one row (its own mean would erase it)
            mean = self.running_mean.to(x.dtype)
        out = x - mean
        return out + self.offset.to(x.dtype) if self.offset is not None else out

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs) -> None:
        own = [prefix + "running_mean"] + ([prefix + "offset"] if self.offset is not None else [])
        if not any(k in state_dict for k in own):  # written before the module existed: load as the identity
            with torch.no_grad():
                self.running_mean.zero_()
                if self.offset is not None:
                    self.offset.zero_()
            return
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def extra_repr(self) -> str:
        return f"{self.dim}, offset={self.offset is not None}, momentum={self.momentum}"
