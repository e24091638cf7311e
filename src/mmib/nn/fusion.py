"""Fusion modules over one vector per modality, and the Gaussian (VAE-style) encoder of the IB methods.

Every fusion module maps a list of M tensors ``(N, d)`` plus a presence vector (which of the M modalities are
given) to ``(N, out_dim)``. A modality that is not given is replaced by a zero vector — the mean of the N(0, I) prior
for the stochastic latents of OMIB and the MIB baselines (documented in ``docs/methods/fusion-baselines.md``) — except
in :class:`TokenTransformerFusion`, which drops the missing tokens.

* :class:`GaussianEncoder` — OMIB's VAE_i (App. H: two-layer MLP, two heads μ, Σ) and Mai et al.'s MIB encoder:
  σ = softplus(h − 5) (Mai et al.'s code) or σ = exp(½ logvar).
* :class:`CrossAttentionFusion` — OMIB's CAN (App. H; spec §2.2 [INTERP]): multi-head attention across the M
  modality tokens, optional residual + LayerNorm, then ``Linear(M·k → k)`` on the flattened tokens. ``mode="cross"``
  masks each token's attention to itself (every token attends only to the other modalities).
* :class:`ConcatFusion` — ``Linear(concat)`` (OMIB's "w/o cross-attn" ablation, Concat baseline, Mai et al.'s
  fusion).
* :class:`FiLMFusion` — Perez et al. 2018 (OGM-GE's ``FiLM``): γ, b from the conditioning modalities modulate one.
* :class:`BiGatedFusion` — Kiela et al. 2018 (OGM-GE's ``GatedFusion``) gated in both directions, concatenated.
* :class:`TokenTransformerFusion` — IBMA's fusion (B.2): one Transformer block over modality tokens with a learned
  modality embedding, masked mean pooling, Linear.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mmib.nn.heads import MLP, activation

SIGMA_PARAMETERIZATIONS = ("softplus", "logvar")


def _stack_tokens(xs: Sequence[torch.Tensor | None], dim: int) -> tuple[torch.Tensor, list[bool]]:
    ref = next((x for x in xs if x is not None), None)
    if ref is None:
        raise ValueError("fusion: at least one modality must be present")
    present = [x is not None for x in xs]
    toks = [x if x is not None else ref.new_zeros(ref.shape[0], dim) for x in xs]
    for i, t in enumerate(toks):
        if t.dim() != 2 or t.shape[1] != dim or t.shape[0] != ref.shape[0]:
            raise ValueError(f"fusion: modality {i} must be (N={ref.shape[0]}, {dim}), got {tuple(t.shape)}")
    return torch.stack(toks, dim=1), present


class GaussianEncoder(nn.Module):
    """``z ↦ (μ, logvar)`` of a diagonal Gaussian: ``h = act(Linear(z))``, ``μ = Linear(h)`` and either
    ``σ = softplus(Linear(h) − 5)`` (Mai et al.) or ``logvar = Linear(h)``; :meth:`sample` reparameterises
    ``ζ = μ + σ ⊙ ε`` (OMIB eq. 6)."""

    def __init__(self, in_dim: int, latent_dim: int, hidden: int = 256, act: str = "relu",
                 sigma: str = "softplus", min_std: float = 1e-6):
        super().__init__()
        if sigma not in SIGMA_PARAMETERIZATIONS:
            raise ValueError(f"sigma must be one of {SIGMA_PARAMETERIZATIONS}, got {sigma!r}")
        self.body = nn.Sequential(nn.Linear(in_dim, hidden), activation(act))
        self.mu = nn.Linear(hidden, latent_dim)
        self.scale = nn.Linear(hidden, latent_dim)
        self.sigma, self.min_std = sigma, float(min_std)
        self.latent_dim = latent_dim

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(z)
        mu = self.mu(h)
        s = self.scale(h)
        if self.sigma == "softplus":
            std = F.softplus(s - 5.0) + self.min_std
            return mu, 2.0 * std.log()
        return mu, s.clamp(-30.0, 20.0)

    @staticmethod
    def sample(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + (0.5 * logvar).exp() * eps


class CrossAttentionFusion(nn.Module):
    """OMIB's CAN over M modality tokens (B, M, k) → ξ (B, k).

    Args:
        dim: token size k; n_modalities: M; heads: attention heads (k must be divisible by it).
        residual_norm: add the input and apply LayerNorm after attention.
        mode: ``self`` (every token attends to all M tokens) or ``cross`` (only to the other modalities).
    """

    def __init__(self, dim: int, n_modalities: int, heads: int = 4, residual_norm: bool = True, mode: str = "self"):
        super().__init__()
        if dim % heads:
            raise ValueError(f"CrossAttentionFusion: dim {dim} is not divisible by heads {heads}")
        if mode not in ("self", "cross"):
            raise ValueError(f"CrossAttentionFusion: mode must be 'self' or 'cross', got {mode!r}")
        if mode == "cross" and n_modalities < 2:
            raise ValueError("CrossAttentionFusion: mode 'cross' needs >= 2 modalities")
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm = nn.LayerNorm(dim) if residual_norm else None
        self.out = nn.Linear(n_modalities * dim, dim)
        self.dim, self.n_modalities, self.mode = dim, n_modalities, mode

    def forward(self, xs: Sequence[torch.Tensor | None]) -> torch.Tensor:
        if len(xs) != self.n_modalities:
            raise ValueError(f"CrossAttentionFusion: expected {self.n_modalities} tokens, got {len(xs)}")
        t, _ = _stack_tokens(xs, self.dim)
        mask = None
        if self.mode == "cross":
            mask = torch.eye(self.n_modalities, dtype=torch.bool, device=t.device)  # True = not allowed
        a, _ = self.attn(t, t, t, attn_mask=mask, need_weights=False)
        if self.norm is not None:
            a = self.norm(a + t)
        return self.out(a.flatten(1))


class ConcatFusion(nn.Module):
    """``Linear(concat(x_1..x_M))`` (optionally an MLP with ``hidden`` layers)."""

    def __init__(self, dims: Sequence[int], out_dim: int, hidden: Sequence[int] = (), act: str = "relu"):
        super().__init__()
        self.dims = [int(d) for d in dims]
        self.net = MLP(sum(self.dims), out_dim, list(hidden), act=act)

    def forward(self, xs: Sequence[torch.Tensor | None]) -> torch.Tensor:
        if len(xs) != len(self.dims):
            raise ValueError(f"ConcatFusion: expected {len(self.dims)} inputs, got {len(xs)}")
        ref = next((x for x in xs if x is not None), None)
        if ref is None:
            raise ValueError("fusion: at least one modality must be present")
        parts = [x if x is not None else ref.new_zeros(ref.shape[0], d) for x, d in zip(xs, self.dims)]
        return self.net(torch.cat(parts, dim=1))


class FiLMFusion(nn.Module):
    """FiLM (Perez et al. 2018): ``(γ, b) = split(Linear(concat of the conditioning modalities))``,
    ``h = γ ⊙ x_target + b`` → ``Linear(dim → out_dim)`` (OGM-GE's FiLM: x conditions y). ``target`` is the index of
    the modulated modality (default: the last)."""

    def __init__(self, dim: int, n_modalities: int, out_dim: int, target: int = -1):
        super().__init__()
        if n_modalities < 2:
            raise ValueError("FiLMFusion needs >= 2 modalities")
        self.target = target % n_modalities
        self.film = nn.Linear(dim * (n_modalities - 1), 2 * dim)
        self.out = nn.Linear(dim, out_dim)
        self.dim, self.n_modalities = dim, n_modalities

    def forward(self, xs: Sequence[torch.Tensor | None]) -> torch.Tensor:
        t, _ = _stack_tokens(xs, self.dim)
        cond = torch.cat([t[:, i] for i in range(self.n_modalities) if i != self.target], dim=1)
        gamma, b = self.film(cond).chunk(2, dim=1)
        return self.out(gamma * t[:, self.target] + b)


class BiGatedFusion(nn.Module):
    """Gated fusion in every direction (Kiela et al. 2018; OGM-GE ``GatedFusion`` ``h = Linear(σ(W_x x) ⊙ W_y y)``):
    for each modality m, ``h_m = σ(G_m mean_{k≠m} x_k) ⊙ W_m x_m``; ``concat(h_m)`` → Linear."""

    def __init__(self, dim: int, n_modalities: int, out_dim: int, hidden: int | None = None):
        super().__init__()
        if n_modalities < 2:
            raise ValueError("BiGatedFusion needs >= 2 modalities")
        h = hidden or dim
        self.value = nn.ModuleList(nn.Linear(dim, h) for _ in range(n_modalities))
        self.gate = nn.ModuleList(nn.Linear(dim, h) for _ in range(n_modalities))
        self.out = nn.Linear(n_modalities * h, out_dim)
        self.dim, self.n_modalities = dim, n_modalities

    def forward(self, xs: Sequence[torch.Tensor | None]) -> torch.Tensor:
        t, _ = _stack_tokens(xs, self.dim)
        m = self.n_modalities
        hs = []
        for i in range(m):
            others = torch.stack([t[:, k] for k in range(m) if k != i], 0).mean(0)
            hs.append(torch.sigmoid(self.gate[i](others)) * self.value[i](t[:, i]))
        return self.out(torch.cat(hs, dim=1))


class TokenTransformerFusion(nn.Module):
    """IBMA's fusion (B.2 [RECOMMEND]): tokens + learned modality embeddings → one post-LN Transformer block
    (``heads`` heads, FFN ``ffn``, dropout) → masked mean over the present tokens → ``Linear(dim → out_dim)``.
    Missing modalities are dropped from attention and pooling."""

    def __init__(self, dim: int, n_modalities: int, out_dim: int, heads: int = 8, ffn: int = 2048,
                 dropout: float = 0.1):
        super().__init__()
        self.type_embedding = nn.Parameter(torch.zeros(n_modalities, dim))
        nn.init.normal_(self.type_embedding, std=0.02)
        self.block = nn.TransformerEncoderLayer(dim, heads, ffn, dropout, batch_first=True)
        self.out = nn.Linear(dim, out_dim)
        self.dim, self.n_modalities = dim, n_modalities

    def forward(self, xs: Sequence[torch.Tensor | None]) -> torch.Tensor:
        t, present = _stack_tokens(xs, self.dim)
        t = t + self.type_embedding[None]
        keep = torch.tensor(present, device=t.device)
        if not all(present):
            t = t[:, keep]
        h = self.block(t)
        return self.out(h.mean(1))
