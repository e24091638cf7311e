"""COX's per-epoch selection (spec ``specs/cox.md`` §2.3–2.4; decisions in ``docs/methods/cox.md``): the cached
training set, the optimal heads ``h_k^*``, and per scenario and phase the anchors, pseudo-labels, emergent partners
and disagreement set D that the loss of :class:`mmib.methods.cox.method.COXMethod` reads through ``_roles_of``.

* scenarios (``method.scenario``): ``semi`` (connect, then explore with agreement pseudo-labels and D) and ``unsup``
  (warm-up on the Eq. 14 anchors, class-centroid connection warm-up, then emergent correspondences, Eq. 15);
* ablations (``method.ablation``): ``none``, ``no_connection`` (IM heads on raw OOM features), ``no_exploration``
  (no KL term; the semi scenario keeps the agreement pseudo-labels), ``no_warmup`` (unsup only);
* the mean entropy of ``h^O`` on D at selection time is logged for evaluation only (never in a loss).

Example:
    >>> import torch
    >>> head = fit_linear_head(torch.nn.Linear(2, 2), torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1]))
    >>> head(torch.tensor([[1.0, 0.0]])).argmax(1).item()
    0
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn
from torch.nn import functional as F

from mmib.data.dataset import Batch
from mmib.errors import MMIBError
from mmib.methods.cox.options import COXAblation
from mmib.objectives.cox import (
    ConnectionLoss,
    agreement_mask,
    emergent_correspondence,
    mmd_rbf,
    select_agreement_anchors,
)

SCENARIOS = ("semi", "unsup")
ABLATIONS = tuple(a.value for a in COXAblation)
SEMI_ANCHOR_MODES = ("labeled", "labeled+agreement_pseudolabel")
WARMUP_SELECTIONS = ("literal", "mmd")


def fit_linear_head(head: nn.Linear, x: torch.Tensor, y: torch.Tensor, steps: int = 100, lr: float = 0.05,
                    weight_decay: float = 1e-4, seed: int = 0) -> nn.Linear:
    """Refit ``head`` in place by full-batch Adam on (x, y) with cross-entropy from a seeded re-initialization."""
    g = torch.Generator().manual_seed(int(seed))
    bound = 1.0 / math.sqrt(head.in_features)
    with torch.no_grad():
        head.weight.copy_((torch.rand(head.weight.shape, generator=g) * 2 - 1) * bound)
        head.bias.zero_()
    x, y = x.detach(), y.detach()
    flags = [p.requires_grad for p in head.parameters()]
    for p in head.parameters():
        p.requires_grad_(True)
    opt = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=weight_decay)
    with torch.enable_grad():
        for _ in range(int(steps)):
            opt.zero_grad()
            F.cross_entropy(head(x), y).backward()
            opt.step()
    head.zero_grad(set_to_none=True)
    for p, f in zip(head.parameters(), flags):
        p.requires_grad_(f)
    return head


class CoxSelection:
    """COX's selection part (a mixin of :class:`~mmib.methods.cox.method.COXMethod`): ``self._cache`` (the training
    set, built once per fit), ``self._roles`` (this epoch's per-row anchor labels, D membership and emergent partners)
    and ``self.history`` (one dict of selection statistics per epoch)."""

    # ------------------------------------------------------------------ cached training set
    def _row_masks(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        mask = batch.get("mask") or {}
        n = batch["x"][self.oom].shape[0]
        ones = torch.ones(n, dtype=torch.bool, device=batch["x"][self.oom].device)
        has_oom = mask.get(self.oom, ones).bool()
        has_im = ones.clone()
        for m in self.im:
            has_im &= mask.get(m, ones).bool()
        return has_oom, has_im

    def build_cache(self, batch: Batch, n_rows: int | None = None) -> None:
        """Cache the training set (one batch holding every training row): OOM inputs, frozen IM features, IM labels,
        and the row lookups used by the per-epoch selection. Labels of rows without IM modalities are not kept."""
        self.modalities_of(batch, self.spec.modality_names)
        if "y" not in batch:
            raise MMIBError(f"method '{self.name}' needs IM labels: the training batch has no 'y'")
        has_oom, has_im = self._row_masks(batch)
        if int(has_im.sum()) < self.n_classes:
            raise MMIBError(f"method '{self.name}': only {int(has_im.sum())} training rows hold every IM modality "
                            f"({', '.join(self.im)}); COX needs labelled IM instances")
        if int(has_oom.sum()) < 1:
            raise MMIBError(f"method '{self.name}': no training row holds the OOM modality '{self.oom}'")
        dev = self.device
        index = batch["index"].to(dev)
        x_im = {m: batch["x"][m][has_im].to(dev) for m in self.im}
        if not bool(self.perceptor_ready):
            self._pretrain_perceptor(x_im)
        n_rows = int(n_rows or int(index.max()) + 1)
        pos_im = torch.full((n_rows,), -1, dtype=torch.long, device=dev)
        pos_im[index[has_im]] = torch.arange(int(has_im.sum()), device=dev)
        pos_oom = torch.full((n_rows,), -1, dtype=torch.long, device=dev)
        pos_oom[index[has_oom]] = torch.arange(int(has_oom.sum()), device=dev)
        paired = (has_oom & has_im)[has_oom]
        self._cache = {
            "x_oom": batch["x"][self.oom][has_oom].to(dev),
            "lengths_oom": (self.lengths_of(batch, self.oom)[has_oom].to(dev)
                            if self.lengths_of(batch, self.oom) is not None else None),
            "z_im": {m: self.perceive(m, x) for m, x in x_im.items()},
            "y_im": batch["y"][has_im].to(dev),
            "paired": paired.to(dev),
            "pos_im": pos_im, "pos_oom": pos_oom, "n_rows": n_rows,
        }
        pair_rows = index[has_oom & has_im]
        self._cache.update({"pair_oom_pos": pos_oom[pair_rows], "pair_im_pos": pos_im[pair_rows],
                            "pair_y": batch["y"][(has_oom & has_im).cpu()].to(dev)})
        for m in self.im:  # IM heads h_k on the frozen features (literal warm-up, w/o connection)
            fit_linear_head(self.im_heads[m], self._cache["z_im"][m], self._cache["y_im"], **self.head_fit)

    @torch.no_grad()
    def _oom_features(self) -> torch.Tensor:
        c = self._cache
        was = self.oom_encoder.training
        self.oom_encoder.eval()
        out = []
        for s in range(0, c["x_oom"].shape[0], 4096):
            lengths = c["lengths_oom"][s : s + 4096] if c["lengths_oom"] is not None else None
            out.append(self.oom_encoder(c["x_oom"][s : s + 4096], lengths))
        self.oom_encoder.train(was)
        return torch.cat(out)

    @torch.no_grad()
    def im_mappings(self) -> dict[str, torch.Tensor]:
        """Deterministic mappings ``m_k`` of every cached IM training instance (raw features without a connection)."""
        return {m: self.map_im(m, z, sample=False)[0] for m, z in self._cache["z_im"].items()}

    def refresh_optimal_heads(self, maps: Mapping[str, torch.Tensor]) -> None:
        """Fit ``h_k^*`` on ``(m_k, y^I)`` (G-2); without a connection the IM heads play that role."""
        if self.use_connection:
            for m in self.im:
                fit_linear_head(self.optimal_heads[m], maps[m], self._cache["y_im"], **self.head_fit)

    def _star_logits(self, z: torch.Tensor) -> list[torch.Tensor]:
        heads = self.optimal_heads if self.use_connection else self.im_heads
        return [heads[m](z) for m in self.im]

    def _set_roles(self, anchor_pos: torch.Tensor, anchor_label: torch.Tensor, d_pos: torch.Tensor,
                   partner_pos: torch.Tensor | None = None) -> None:
        """Per-row lookups for the batches: anchor label (-1 = none), D membership, emergent IM partner."""
        c = self._cache
        dev = self.device
        rows = torch.nonzero(c["pos_oom"] >= 0, as_tuple=True)[0]
        row_of_pos = torch.empty(len(rows), dtype=torch.long, device=dev)
        row_of_pos[c["pos_oom"][rows]] = rows
        label = torch.full((c["n_rows"],), -1, dtype=torch.long, device=dev)
        label[row_of_pos[anchor_pos]] = anchor_label
        in_d = torch.zeros(c["n_rows"], dtype=torch.bool, device=dev)
        in_d[row_of_pos[d_pos]] = True
        partner = torch.full((c["n_rows"],), -1, dtype=torch.long, device=dev)
        if partner_pos is not None:
            partner[row_of_pos[anchor_pos]] = partner_pos
        self._roles = {"label": label, "in_d": in_d, "partner": partner}

    # ------------------------------------------------------------------ per-epoch schedule
    def phase(self, epoch: int | None = None) -> str:
        e = self.current_epoch if epoch is None else epoch
        if self.scenario == "semi":
            return "connect" if e < self.connect_epochs else "explore"
        return "warmup" if e < self.warmup_epochs else "explore"

    def on_fit_start(self) -> None:
        dm = getattr(self.trainer, "datamodule", None)
        if dm is None or not hasattr(dm, "split_batch"):
            raise MMIBError(f"method '{self.name}' trains with an mmib MultimodalDataModule (it caches the training "
                            "set once per epoch for the selection rules)")
        self.build_cache(dm.split_batch("train"), n_rows=len(dm.dataset))

    def on_train_epoch_start(self) -> None:
        self.refresh(self.current_epoch)

    @torch.no_grad()
    def refresh(self, epoch: int) -> dict[str, float]:
        """The per-epoch selection (G-5/G-6): h_k^*, and the anchor / disagreement sets of this epoch's phase."""
        if self._cache is None:
            raise MMIBError(f"method '{self.name}': refresh() before build_cache()")
        c = self._cache
        phase = self.phase(epoch)
        z = self._oom_features()
        n_oom = z.shape[0]
        top = max(1, int(round(self.anchor_fraction * n_oom)))
        info: dict[str, float] = {"epoch": float(epoch)}
        empty = torch.zeros(0, dtype=torch.long, device=self.device)
        if self.scenario == "semi":
            if phase == "connect":
                self.refresh_optimal_heads(self.im_mappings())  # only for the A/D analysis (Fig. 6a)
                self._set_roles(empty, empty, empty)
                d_log = torch.nonzero(~c["paired"] & ~agreement_mask(self._star_logits(z)), as_tuple=True)[0]
                info.update(self._entropy_on(z, d_log))
            else:
                maps = self.im_mappings()
                self.refresh_optimal_heads(maps)
                logits = self._star_logits(z)
                unl = ~c["paired"]
                agree = agreement_mask(logits)
                d_pos = torch.nonzero(unl & ~agree, as_tuple=True)[0]
                use_pl = self.semi_anchor_mode != "labeled" or not self.explores
                a_pos = torch.nonzero(unl & agree, as_tuple=True)[0] if use_pl else empty
                self._set_roles(a_pos, logits[0][a_pos].argmax(1), d_pos)
                info.update({"n_D": float(len(d_pos)), "n_agree_pl": float(len(a_pos)), **self._entropy_on(z, d_pos)})
        else:
            if phase == "warmup":
                if self.warmup_selection == "mmd" and epoch == 0 and self.use_connection:
                    self._mmd_init_connection(z)
                if self.warmup_selection == "mmd" and self.use_connection:
                    self.refresh_optimal_heads(self.im_mappings())
                    logits = self._star_logits(z)
                else:  # literal: IM heads on the raw OOM features (U-1)
                    logits = [self.im_heads[m](z) for m in self.im]
                idx, pl, _ = select_agreement_anchors([F.softmax(s, 1) for s in logits], top)
                self._set_roles(idx, pl, empty)
                info.update({"n_anchor": float(len(idx))})
            else:
                if epoch == self.warmup_epochs and self.warmup_epochs > 0 and self.use_connection:
                    self._centroid_warmup(z)
                maps = self.im_mappings()
                self.refresh_optimal_heads(maps)
                idx, labels, istar, _ = emergent_correspondence(z, [maps[m] for m in self.im], c["y_im"], top,
                                                                self.chunk_size)
                agree = agreement_mask(self._star_logits(z))
                not_a = torch.ones(n_oom, dtype=torch.bool, device=self.device)
                not_a[idx] = False
                d_pos = torch.nonzero(~agree & not_a, as_tuple=True)[0]  # U-2: D excludes A
                self._set_roles(idx, labels, d_pos, partner_pos=istar[idx])
                info.update({"n_anchor": float(len(idx)), "n_D": float(len(d_pos)), **self._entropy_on(z, d_pos)})
        self.history.append(info)
        return info

    @torch.no_grad()
    def _entropy_on(self, z: torch.Tensor, d_pos: torch.Tensor) -> dict[str, float]:
        """Evaluation only (never in a loss): mean entropy (nats) of h^O's posterior over the training samples
        ``d_pos`` (the disagreement set of h_k^*) at selection time, with log C = the uniform posterior's."""
        if len(d_pos) == 0:
            return {"entropy_D": float("nan")}
        logp = F.log_softmax(self.oom_head(z[d_pos]), dim=1)
        return {"entropy_D": float(-(logp.exp() * logp).sum(1).mean())}

    def anchor_pseudolabels(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The current epoch's anchors as (data set row ids, pseudo-labels), for evaluation (e.g. their accuracy
        against the hidden OOM labels in :class:`mmib.eval.oom.OOMTracker`); empty before the first refresh. In the
        semi scenario these are the agreement pseudo-labels, in the unsupervised warm-up the Eq. 14 anchors, in
        the unsupervised explore phase the emergent (Eq. 15) anchors."""
        if self._roles is None:
            empty = torch.zeros(0, dtype=torch.long)
            return empty, empty
        rows = torch.nonzero(self._roles["label"] >= 0, as_tuple=True)[0]
        return rows.cpu(), self._roles["label"][rows].cpu()

    def _centroid_warmup(self, z: torch.Tensor) -> None:
        """Unsupervised connection warm-up (§3.5): pair the OOM centroid of predicted class y with the IM centroid of
        true class y and train the connections on these C pairs (reconstruction only, OOM centroids detached)."""
        c = self._cache
        pred = self.oom_head(z).argmax(1)
        classes = [y for y in range(self.n_classes) if bool((pred == y).any()) and bool((c["y_im"] == y).any())]
        if not classes:
            return
        tgt = torch.stack([z[pred == y].mean(0) for y in classes])
        src = {m: torch.stack([c["z_im"][m][c["y_im"] == y].mean(0) for y in classes]) for m in self.im}
        opt = torch.optim.Adam(self.connections.parameters(), lr=self.opts.centroid_lr)
        with torch.enable_grad():
            for _ in range(self.centroid_steps):
                opt.zero_grad()
                maps = [self.connections[m](src[m], sample=True)[0] for m in self.im]
                ConnectionLoss(self.recon.reduction, True)(tgt, maps).loss.backward()
                opt.step()
        self.connections.zero_grad(set_to_none=True)

    def _mmd_init_connection(self, z: torch.Tensor) -> None:
        """OUR opt-in fix for U-1 (not in the paper): before Eq. 14, fit each connection so that the mapped IM
        features match the marginal distribution of the OOM features (RBF-MMD, OOM side detached)."""
        c = self._cache
        g = torch.Generator().manual_seed(self.opts.seed)
        opt = torch.optim.Adam(self.connections.parameters(), lr=self.opts.mmd_lr)
        n_i, n_o = c["y_im"].shape[0], z.shape[0]
        with torch.enable_grad():
            for _ in range(self.mmd_steps):
                ii = torch.randint(0, n_i, (min(256, n_i),), generator=g).to(self.device)
                jj = torch.randint(0, n_o, (min(256, n_o),), generator=g).to(self.device)
                opt.zero_grad()
                loss = sum(mmd_rbf(self.connections[m](c["z_im"][m][ii], sample=False)[0], z[jj]) for m in self.im)
                loss.backward()
                opt.step()
        self.connections.zero_grad(set_to_none=True)

    def _roles_of(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        r = self._roles
        if r is None:
            n = index.shape[0]
            return (torch.full((n,), -1, dtype=torch.long, device=index.device),
                    torch.zeros(n, dtype=torch.bool, device=index.device),
                    torch.full((n,), -1, dtype=torch.long, device=index.device))
        inside = index < r["label"].shape[0]
        idx = index.clamp(max=r["label"].shape[0] - 1)
        label = torch.where(inside, r["label"][idx], -1)
        return label, r["in_d"][idx] & inside, torch.where(inside, r["partner"][idx], -1)
