"""KL terms of the variational information bottleneck (Alemi et al., "Deep Variational Information Bottleneck",
ICLR 2017, Eq. 15): with an encoder ``p(z|x) = N(μ(x), diag σ²(x))`` and prior ``r(z)``,
``I(Z;X) <= E_x KL[p(z|x) || r(z)]``. Used by the MIB baselines, OMIB's ``KL_i`` (spec omib §3, Eq. 10) and COX.
"""

from __future__ import annotations

import torch


def gaussian_kl(mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor | None = None,
                logvar_p: torch.Tensor | None = None, reduction: str = "mean") -> torch.Tensor:
    """``KL[N(μ_q, diag e^{logvar_q}) || N(μ_p, diag e^{logvar_p})]`` per sample, **summed over latent dimensions**
    (nats; the true KL, as OMIB's β theory needs), then reduced over the batch.

    Closed form: ``½ Σ_k [ logvar_p - logvar_q + (e^{logvar_q} + (μ_q - μ_p)²) / e^{logvar_p} - 1 ]``.
    Defaults ``μ_p = 0``, ``logvar_p = 0`` (the VIB prior N(0, I)).

    Args:
        reduction: ``"mean"`` (over the batch), ``"sum"`` or ``"none"`` (per sample, shape ``(N,)``).

    Note: Mai et al.'s MIB code averages over latent dimensions instead, which divides the KL (and the effective β)
    by the latent size (spec omib §3).
    """
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if not isinstance(mu_q, torch.Tensor) or mu_q.dim() != 2:
        raise ValueError(f"mu_q must be a 2-D tensor (N, k), got {getattr(mu_q, 'shape', type(mu_q).__name__)}")
    if not isinstance(logvar_q, torch.Tensor) or logvar_q.shape != mu_q.shape:
        raise ValueError(f"logvar_q must be a tensor of the shape of mu_q {tuple(mu_q.shape)}, "
                         f"got {getattr(logvar_q, 'shape', type(logvar_q).__name__)}")
    mu_p = torch.zeros_like(mu_q) if mu_p is None else mu_p
    logvar_p = torch.zeros_like(logvar_q) if logvar_p is None else logvar_p
    for name, t in (("mu_p", mu_p), ("logvar_p", logvar_p)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a tensor broadcastable to {tuple(mu_q.shape)}")
    for name, t in (("mu_q", mu_q), ("logvar_q", logvar_q), ("mu_p", mu_p), ("logvar_p", logvar_p)):
        if not torch.isfinite(t).all():
            raise ValueError(f"{name} contains NaN or inf")
    kl = 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) / logvar_p.exp() - 1.0).sum(-1)
    if reduction == "mean":
        return kl.mean()
    if reduction == "sum":
        return kl.sum()
    return kl
