"""MLPs and projection heads."""

from __future__ import annotations

from collections.abc import Sequence

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
