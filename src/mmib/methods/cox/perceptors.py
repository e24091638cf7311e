"""COX's frozen perceptors ``g_k^I`` of the in-modal (IM) modalities (spec ``specs/cox.md`` §2.1; decisions in
``docs/methods/cox.md``), four kinds (``method.perceptor.type``):

* ``identity``: the IM modalities already are frozen features (precomputed ImageBind embeddings, the cox_sim testbed);
* ``random_linear``: a fixed random projection (seeded);
* ``run``: the encoders of a trained mmib run (``perceptor.run_dir``), its method loaded through
  :func:`mmib.methods.registry.run_checkpoint` + :func:`~mmib.methods.registry.load_method`;
* ``pretrain``: COX first trains an alignment method (``clip`` by default) on its own IM training rows, then freezes it.

:class:`CoxPerceptors` is the part of :class:`mmib.methods.cox.method.COXMethod` that builds, runs and pretrains them.

Example:
    >>> import torch
    >>> p = FrozenPerceptor("random_linear", in_dim=6, out_dim=3, seed=0)
    >>> p(torch.randn(4, 6)).shape
    torch.Size([4, 3])
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

from mmib.errors import MMIBError
from mmib.methods.base import SPACES, Method
from mmib.methods.cox.options import PerceptorOptions, perceptor_method_defaults
from mmib.methods.registry import build_method, load_method, run_checkpoint

PERCEPTORS = ("identity", "random_linear", "run", "pretrain")


class FrozenPerceptor(nn.Module):
    """A frozen feature extractor of one IM modality: never trained by COX, always in eval mode."""

    def __init__(self, kind: str, in_dim: int, out_dim: int, seed: int = 0, model: Method | None = None,
                 modality: str = "", space: str = "representation"):
        super().__init__()
        self.kind, self.out_dim, self.modality, self.space = kind, out_dim, modality, space
        self.model = model
        if kind == "random_linear":
            g = torch.Generator().manual_seed(int(seed))
            self.register_buffer("weight", torch.randn(out_dim, in_dim, generator=g) / math.sqrt(in_dim))

    def train(self, mode: bool = True) -> FrozenPerceptor:  # always eval
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "identity":
            return x.reshape(x.shape[0], -1)
        if self.kind == "random_linear":
            return x.reshape(x.shape[0], -1) @ self.weight.T
        return self.model.embed({"x": {self.modality: x}}, [self.modality], space=self.space)[self.modality]


class CoxPerceptors:
    """COX's perceptor part (a mixin of :class:`~mmib.methods.cox.method.COXMethod`): ``self.perceptors`` (one
    :class:`FrozenPerceptor` per IM modality) and, for ``run`` / ``pretrain``, ``self.perceptor_model``."""

    def _build_perceptors(self, pc: PerceptorOptions) -> nn.ModuleDict:
        kind = pc.type
        if kind not in PERCEPTORS:
            raise MMIBError(f"method.perceptor.type must be one of {', '.join(PERCEPTORS)}, got {kind!r}")
        space = pc.space
        if space not in SPACES:
            raise MMIBError(f"method.perceptor.space must be one of {', '.join(SPACES)}, got {space!r}")
        out: dict[str, FrozenPerceptor] = {}
        if kind in ("identity", "random_linear"):
            for i, m in enumerate(self.im):
                ms = self.spec.modality(m)
                if ms.kind != "vector" and kind == "identity":
                    raise MMIBError(f"method.perceptor.type=identity needs vector IM modalities; '{m}' is a {ms.kind}")
                d_in = int(math.prod(s for s in ms.shape if s))
                dim = d_in if kind == "identity" else pc.dim
                out[m] = FrozenPerceptor(kind, d_in, dim, seed=pc.seed + i)
            return nn.ModuleDict(out)
        if kind == "run":
            if not pc.run_dir:
                raise MMIBError("method.perceptor.type=run needs perceptor.run_dir (an mmib run trained on the IM "
                                "modalities, e.g. `mmib train method=clip data=mfeat data.views=[...]`)")
            model = load_method(str(run_checkpoint(pc.run_dir)[1]))  # the run's method (its data is not needed)
            missing = [m for m in self.im if m not in model.spec.modality_names]
            if missing:
                raise MMIBError(f"perceptor run '{pc.run_dir}' has no modality {missing} "
                                f"(it has {', '.join(model.spec.modality_names)})")
        else:  # pretrain
            if len(self.im) < 2:
                raise MMIBError("method.perceptor.type=pretrain trains an alignment method on the IM modalities "
                                "and needs K >= 2 of them; supply features (identity) or a run instead")
            mcfg = {**perceptor_method_defaults(), **pc.method}
            # the perceptor sees the IM modalities only: drop per-modality encoder settings of the others
            enc = dict(self.encoder_cfg or {})
            if isinstance(enc.get("modalities"), Mapping):
                enc["modalities"] = {k: v for k, v in enc["modalities"].items() if k in self.im}
            model = build_method(mcfg["name"], self.spec.subset(self.im), mcfg, enc)
        model.eval()
        for m in self.im:
            ms = self.spec.modality(m)
            probe = torch.zeros(2, *[s or 8 for s in ms.shape])
            with torch.no_grad():
                dim = model.embed({"x": {m: probe}}, [m], space=space)[m].shape[1]
            out[m] = FrozenPerceptor(kind, 0, int(dim), model=None, modality=m, space=space)
        self.perceptor_model = model  # a submodule: saved with COX's checkpoint, never in its optimizer
        return nn.ModuleDict(out)

    def perceive(self, m: str, x: torch.Tensor) -> torch.Tensor:
        """Frozen IM features ``z_m^I = g_m^I(x)`` (no gradient, ever)."""
        with torch.no_grad():
            p = self.perceptors[m]
            if p.kind in ("run", "pretrain"):
                self.perceptor_model.eval()
                return self.perceptor_model.embed({"x": {m: x}}, [m], space=p.space)[m].detach()
            return p(x).detach()

    def _pretrain_perceptor(self, x_im: dict[str, torch.Tensor]) -> None:
        pc = self.opts.perceptor
        model = self.perceptor_model
        epochs, bs = pc.epochs, pc.batch_size
        n = next(iter(x_im.values())).shape[0]
        if n < 2:
            raise MMIBError("perceptor pretraining: fewer than 2 IM training rows")
        for p in model.parameters():
            p.requires_grad_(True)
        opt = torch.optim.Adam(model.parameters(), lr=pc.lr)
        g = torch.Generator().manual_seed(pc.seed)
        model.train()
        with torch.enable_grad():
            for _ in range(epochs):
                perm = torch.randperm(n, generator=g)
                for s in range(0, n - 1, bs):
                    idx = perm[s : s + bs].to(self.device)
                    if len(idx) < 2:
                        continue
                    opt.zero_grad()
                    out = model.loss({"x": {m: v[idx] for m, v in x_im.items()}})
                    out.loss.backward()
                    opt.step()
        model.eval()
        model.zero_grad(set_to_none=True)
        for p in model.parameters():
            p.requires_grad_(False)
        self.perceptor_ready.fill_(True)
