"""The ``decoded`` synergy path of ``rus`` (:mod:`mmib.methods.rus`, ``synergy_source: decoded``; issue 20): Z_S is
a centred bilinear form of the two modalities' decoded reconstruction targets,

    Z_S = Head_S(LayerNorm(W_a c_a(t_a) ⊙ W_b c_b(t_b))),   t_m = Decoder_m(Z_U_m) (detached),

with W_m without bias and c_m a centring of t_m (``decoded_head: linear``: Z_S = W_S (W_a c_a ⊙ W_b c_b), no LayerNorm
and no MLP, so Z_S is a bilinear form of the centred targets itself): ``decoded_centre: running`` subtracts the running mean and divides
by the running scale (a BatchNorm without affine parameters); ``redundant`` first subtracts a linear prediction of
t_m from the (detached) redundant components [Z_R_a, Z_R_b] (fitted by its own MSE term, ``L_centre``, which moves
nothing else), so that a mean shift both modalities share (the event e) leaves no main effect of either modality in
the product; ``other`` subtracts a linear prediction of t_m from the *other* modality's (detached) Z_R alone, i.e. t_m
minus what the other modality predicts of it: the event e, which both carry, is removed, while m's own unique factor
(G for the EEG, A for the fNIRS), which the other modality cannot know, is kept even when m's own Z_R holds it. A bias,
or an uncentred input, would add main effects: (x + μ)(y + ν) = xy + νx + μy + μν. ``cluster`` standardizes t_m by
the running mean and variance of its cluster, the nearer of 2 running prototypes (EMA k-means) of the detached
[Z_R_a, Z_R_b]: the two clusters are the event and no-event trials (e is the binary factor both modalities carry), so
the centring is event-conditional without labels, and a modality's own factor is not subtracted."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from mmib.data.physio.targets import target_dim
from mmib.data.spec import DatasetSpec
from mmib.errors import MMIBError

#: the values of ``decoded_centre``
CENTRES = ("running", "redundant", "other", "cluster")
#: EMA momentum of the prototypes and per-cluster statistics of ``decoded_centre: cluster``
CLUSTER_MOMENTUM = 0.1


def _two_means(x: torch.Tensor, iters: int = 10) -> torch.Tensor:
    """2-means (Lloyd) of the rows of ``x``, started at the two rows with the smallest and largest projection on the
    first principal direction; returns the (2, d) centres."""
    xc = x - x.mean(0)
    v = torch.linalg.svd(xc, full_matrices=False)[2][0]
    proj = xc @ v
    centres = torch.stack([x[proj.argmin()], x[proj.argmax()]])
    for _ in range(iters):
        lab = torch.cdist(x, centres).argmin(1)
        centres = torch.stack([x[lab == j].mean(0) if bool((lab == j).any()) else centres[j] for j in range(2)])
    return centres


class DecodedSynergy:
    """Mixin of :class:`~mmib.methods.rus.RUSMethod` for ``synergy_source: decoded``."""

    mods: list[str]
    targets: dict[str, str]
    head_u: nn.ModuleDict
    head_r: nn.ModuleDict
    decoders: nn.ModuleDict
    head_s: nn.Module

    def _init_decoded(self, spec: DatasetSpec, o: Any, d: int, k: int) -> int:
        """Build the product branch of the decoded path; returns the size of Head_S's input."""
        if o.interaction != "product" or "none" in self.targets.values():
            raise MMIBError("method 'rus': synergy_source 'decoded' multiplies the decoded reconstruction targets of "
                            "both modalities: it needs interaction: product and a target for each modality")
        if o.decoded_centre not in CENTRES:
            raise MMIBError(f"method 'rus': decoded_centre must be one of {', '.join(CENTRES)}, got "
                            f"{o.decoded_centre!r}")
        self.decoded_centre = o.decoded_centre
        dims = {m: target_dim(t, spec.modality(m)) for m, t in self.targets.items()}
        self.product = nn.ModuleDict({m: nn.Linear(dims[m], d, bias=False) for m in self.mods})
        self.product_centre = nn.ModuleDict({m: nn.BatchNorm1d(dims[m], affine=False) for m in self.mods})
        if o.decoded_head not in ("mlp", "linear"):
            raise MMIBError(f"method 'rus': decoded_head must be 'mlp' or 'linear', got {o.decoded_head!r}")
        self.decoded_head = o.decoded_head  # RUSMethod builds Head_S: a bias-free nn.Linear for 'linear'
        # linear: Z_S = W_S (W_a c_a ⊙ W_b c_b), a bilinear form itself (no LayerNorm, no MLP, no bias): a nonlinearity
        # after the product would turn the interaction of two factors back into main effects (e.g. |xy|)
        self.product_norm = nn.LayerNorm(d) if self.decoded_head == "mlp" else nn.Identity()
        if self.decoded_centre == "cluster":  # 2 running prototypes of [Z_R_a, Z_R_b], per-cluster mean / var of t_m
            self.register_buffer("centre_proto", torch.zeros(2, len(self.mods) * k))
            self.register_buffer("centre_ready", torch.zeros((), dtype=torch.bool))
            for m in self.mods:
                self.register_buffer(f"centre_mean_{m}", torch.zeros(2, dims[m]))
                self.register_buffer(f"centre_var_{m}", torch.ones(2, dims[m]))
        elif self.decoded_centre != "running":  # redundant: from [Z_R_a, Z_R_b]; other: from Z_R of the other modality
            n_in = k if self.decoded_centre == "other" else len(self.mods) * k
            self.centre_fit = nn.ModuleDict({m: nn.Linear(n_in, dims[m]) for m in self.mods})
        return d

    def _decoded_targets(self, hidden: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {m: self.decoders[m](self.head_u[m](hidden[m])).detach() for m in self.mods}

    def _centre_inputs(self, redundant: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The (detached) input of each modality's centring prediction: [Z_R_a, Z_R_b] (``redundant``) or the other
        modality's Z_R (``other``)."""
        a, b = self.mods
        if self.decoded_centre == "other":
            return {a: redundant[b].detach(), b: redundant[a].detach()}
        zr = torch.cat([redundant[m] for m in self.mods], dim=1).detach()
        return {m: zr for m in self.mods}

    @torch.no_grad()
    def _cluster_of(self, zr: torch.Tensor) -> torch.Tensor:
        """The nearest of the 2 prototypes of each row of the detached [Z_R_a, Z_R_b]; in training the prototypes and
        the per-cluster mean / variance of the decoded targets are first updated (EMA, momentum ``CLUSTER_MOMENTUM``;
        the first batch initialises them by 2-means started at its extremes along its first principal direction)."""
        if self.training:
            if not bool(self.centre_ready):
                self.centre_proto.copy_(_two_means(zr))
                self.centre_ready.fill_(True)
            lab = torch.cdist(zr, self.centre_proto).argmin(1)
            for j in range(2):
                sel = lab == j
                if bool(sel.any()):
                    self.centre_proto[j].lerp_(zr[sel].mean(0), CLUSTER_MOMENTUM)
        return torch.cdist(zr, self.centre_proto).argmin(1)

    def _cluster_centre(self, t: Mapping[str, torch.Tensor], zr: torch.Tensor) -> dict[str, torch.Tensor]:
        """``decoded_centre: cluster``: t_m standardized by the running mean and variance of its cluster (the nearest
        prototype of [Z_R_a, Z_R_b]): the binary event e, which both modalities carry, is what separates the two
        clusters, so this is an event-conditional centring learned without labels. Untrained (no prototypes yet):
        t_m unchanged."""
        if not self.training and not bool(self.centre_ready):
            return dict(t)
        lab = self._cluster_of(zr)
        out = {}
        for m in self.mods:
            mean, var = getattr(self, f"centre_mean_{m}"), getattr(self, f"centre_var_{m}")
            if self.training:
                with torch.no_grad():
                    for j in range(2):
                        sel = lab == j
                        if int(sel.sum()) >= 2:
                            mean[j].lerp_(t[m][sel].mean(0), CLUSTER_MOMENTUM)
                            var[j].lerp_(t[m][sel].var(0), CLUSTER_MOMENTUM)
            out[m] = (t[m] - mean[lab]) / torch.sqrt(var[lab] + 1e-5)
        return out

    def _decoded_inputs(self, hidden: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """c_m(t_m) of each modality: the centred (and scaled) decoded targets that enter the product."""
        t = self._decoded_targets(hidden)
        if self.decoded_centre == "cluster":
            zr = torch.cat([self.head_r[m](hidden[m]) for m in self.mods], dim=1).detach()
            t = self._cluster_centre(t, zr)
        elif self.decoded_centre != "running":
            zr = self._centre_inputs({m: self.head_r[m](hidden[m]) for m in self.mods})
            t = {m: t[m] - self.centre_fit[m](zr[m]).detach() for m in self.mods}
        return {m: self.product_centre[m](t[m]) for m in self.mods}

    def _decoded_synergy(self, hidden: Mapping[str, torch.Tensor]) -> torch.Tensor:
        a, b = self.mods
        c = self._decoded_inputs(hidden)
        return self.head_s(self.product_norm(self.product[a](c[a]) * self.product[b](c[b])))

    def _centre_loss(self, decoded: Mapping[str, torch.Tensor], redundant: Mapping[str, torch.Tensor]
                     ) -> torch.Tensor | None:
        """L_centre: the MSE of the linear prediction of each decoded target from [Z_R_a, Z_R_b] (``redundant``) or
        from the other modality's Z_R (``other``) (both sides detached: the term trains the prediction only), given the
        training view's decoded targets and redundant components; None with ``decoded_centre: running``."""
        if getattr(self, "decoded_centre", "running") in ("running", "cluster"):
            return None
        zr = self._centre_inputs(redundant)
        return sum((self.centre_fit[m](zr[m]) - decoded[m].detach()).pow(2).mean() for m in self.mods)
