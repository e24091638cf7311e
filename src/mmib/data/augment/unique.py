"""FactorCL's unique augmentation (Liang et al., NeurIPS 2023, §3.2, Eqs. 17–18)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mmib.data.augment.base import Augmentation
from mmib.errors import MMIBError


# ----------------------------------------------------------------------------------------------- FactorCL
class UniqueAugmentation:
    """FactorCL's unique augmentation X2' ~ t(X2 | X1) (Liang et al. 2023, §3.2, Eq. 18: I(X2;X2'|X1) = I(X2;Y|X1)).

    A base augmentation of X2 is drawn and its perturbation δ = t(x2) − x2 is kept only where it cannot destroy
    what X2 shares with X1:

    * ``protect="cv"`` (default): the shared part is the subspace of (flattened) X2 that X1 predicts *out of
      sample*, decided on the batch by cross-validation: ``folds``-fold ridge regression of X2 on X1 (dual form, so
      flattened signals with more features than samples work) gives out-of-fold predictions P; the candidate
      directions are P's right singular vectors v_k; component k is kept when its held-out R²_k =
      1 − ‖(X2 − P) v_k‖² / ‖X2 v_k‖² exceeds both ``min_r2`` and the largest R² that ``permutations`` copies of
      the procedure reach with the rows of X1 shuffled (a permutation test at level 1/(permutations + 1) on the
      leading component). The protected rank is the number of leading components that pass. Nothing shared →
      rank 0 (up to the test's false-positive rate); δ is projected off the kept directions;
    * ``protect="auto"`` (the earlier rule): ridge-regress X2 on X1 *in sample*, take the top singular directions
      of the prediction that explain ``energy`` of its variance (at most ``max_rank``). An in-sample prediction is
      never zero, so this protects about half the rank even when the modalities are independent;
    * ``protect=[i, j, ...]``: indices of flattened X2 features known to be shared (e.g. "clinical" features);
      δ is zeroed there (the paper's "CutMix on nonclinical features" / "noise on silent frames");
    * ``protect=None``: no protection (= the independent augmentation of the FactorCL-IndAug ablation).

    Args:
        base: the augmentation of X2.
        protect: ``"cv"``, ``"auto"``, a list of feature indices, or ``None``.
        ridge: ridge penalty relative to the mean squared norm of the (centered) X1 rows.
        energy, max_rank: ``"auto"``: how much of the predictable variance the protected subspace covers;
            ``max_rank`` also caps the ``"cv"`` rank.
        folds, permutations, min_r2: ``"cv"``'s cross-validation folds, permutation count and R² floor.
        seed: seed of ``"cv"``'s fold assignment and permutations (a fixed private generator, so the rule does not
            draw from the augmentation stream).
        refresh_every: recompute the ``"cv"`` / ``"auto"`` basis every this many calls and reuse it in between (the
            basis lives in feature space, so it carries over from batch to batch; 1 = every batch).
    """

    def __init__(self, base: Augmentation, protect: str | Sequence[int] | None = "cv", ridge: float = 1e-1,
                 energy: float = 0.9, max_rank: int = 64, folds: int = 5, permutations: int = 19,
                 min_r2: float = 0.02, seed: int = 0, refresh_every: int = 1) -> None:
        if isinstance(protect, str) and protect not in ("cv", "auto"):
            raise MMIBError(f"unique augmentation: protect must be 'cv', 'auto', a list of indices or None, "
                            f"got {protect!r}")
        if not 0 < energy <= 1 or ridge < 0 or max_rank < 1:
            raise MMIBError("unique augmentation: need 0 < energy <= 1, ridge >= 0, max_rank >= 1")
        if int(folds) < 2 or int(permutations) < 1 or not 0 <= min_r2 < 1 or int(refresh_every) < 1:
            raise MMIBError("unique augmentation: need folds >= 2, permutations >= 1, 0 <= min_r2 < 1 and "
                            "refresh_every >= 1")
        self.refresh_every, self._calls, self._basis = int(refresh_every), 0, None
        self.base, self.protect, self.ridge, self.energy, self.max_rank = base, protect, float(ridge), float(energy), int(max_rank)
        self.folds, self.permutations, self.min_r2, self.seed = int(folds), int(permutations), float(min_r2), int(seed)

    def shared_basis(self, x2: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """Orthonormal columns (D2, r) spanning the protected part of flattened X2 (``"cv"`` or ``"auto"``)."""
        if self.protect == "cv":
            return self.cv_shared_basis(x2, x1)[0]
        a = x1.reshape(x1.shape[0], -1).double()
        b = x2.reshape(x2.shape[0], -1).double()
        a = a - a.mean(0)
        b = b - b.mean(0)
        lam = self.ridge * float(a.pow(2).mean()) * a.shape[0] + 1e-8
        # prediction of b from a by ridge regression, computed in the sample space (N x N system)
        k = a @ a.T
        pred = k @ torch.linalg.solve(k + lam * torch.eye(k.shape[0], dtype=k.dtype, device=k.device), b)
        _, s, vh = torch.linalg.svd(pred, full_matrices=False)
        if float(s.sum()) <= 0:
            return b.new_zeros(b.shape[1], 0).to(x2.dtype)
        e = (s**2).cumsum(0) / (s**2).sum()
        r = min(int((e < self.energy).sum()) + 1, self.max_rank, vh.shape[0])
        return vh[:r].T.to(x2.dtype)

    def _heldout_r2(self, a: torch.Tensor, b: torch.Tensor, fold: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Out-of-fold ridge predictions of ``b`` from ``a``; returns (R² per direction, directions (D2, r))."""
        pred = torch.zeros_like(b)
        for f in range(self.folds):
            te, tr = fold == f, fold != f
            at, bt = a[tr], b[tr]
            ma, mb = at.mean(0), bt.mean(0)
            at, bt = at - ma, bt - mb
            k = at @ at.T
            lam = self.ridge * float(k.diagonal().mean()) + 1e-8
            alpha = torch.linalg.solve(k + lam * torch.eye(k.shape[0], dtype=k.dtype, device=k.device), bt)
            pred[te] = (a[te] - ma) @ at.T @ alpha + mb
        b0 = b - b.mean(0)
        p0 = pred - b.mean(0)
        r = min(self.max_rank, *b0.shape)
        _, _, vh = torch.linalg.svd(p0, full_matrices=False)
        v = vh[:r].T  # (D2, r)
        bv, pv = b0 @ v, p0 @ v
        r2 = 1 - (bv - pv).pow(2).sum(0) / bv.pow(2).sum(0).clamp_min(1e-300)
        return r2, v

    def cv_shared_basis(self, x2: torch.Tensor, x1: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """The ``"cv"`` basis (D2, r) and a record ``{"r2": held-out R² per candidate, "threshold": ..., "rank"}``."""
        n = x1.shape[0]
        a = x1.reshape(n, -1).double()
        b = x2.reshape(n, -1).double()
        empty = b.new_zeros(b.shape[1], 0).to(x2.dtype)
        if n < 2 * self.folds:
            return empty, {"r2": [], "threshold": float("nan"), "rank": 0}
        g = torch.Generator().manual_seed(self.seed)
        fold = torch.randperm(n, generator=g) % self.folds
        r2, v = self._heldout_r2(a, b, fold.to(a.device))
        null = [float(self._heldout_r2(a[torch.randperm(n, generator=g).to(a.device)], b, fold.to(a.device))[0].max())
                for _ in range(self.permutations)]
        thr = max(self.min_r2, max(null))
        passed = (r2 > thr).tolist()
        rank = passed.index(False) if False in passed else len(passed)
        return v[:, :rank].to(x2.dtype), {"r2": r2.tolist(), "threshold": thr, "rank": rank}

    def __call__(self, x2: torch.Tensor, x1: torch.Tensor, g: torch.Generator | None = None,
                 lengths: torch.Tensor | None = None) -> torch.Tensor:
        if x1.shape[0] != x2.shape[0]:
            raise MMIBError(f"unique augmentation: batch sizes differ ({x2.shape[0]} vs {x1.shape[0]})")
        y = self.base(x2, g, lengths)
        if self.protect is None:
            return y
        delta = (y - x2).reshape(x2.shape[0], -1)
        if self.protect in ("auto", "cv"):
            if x2.shape[0] < 2:
                return y
            if self._basis is None or self._calls % self.refresh_every == 0 or self._basis.shape[0] != delta.shape[1]:
                self._basis = self.shared_basis(x2, x1)
            self._calls += 1
            basis = self._basis.to(delta)
            delta = delta - (delta @ basis) @ basis.T
        else:
            idx = torch.as_tensor(list(self.protect), dtype=torch.long, device=x2.device)
            if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= delta.shape[1]):
                raise MMIBError(f"unique augmentation: protected feature index out of range [0, {delta.shape[1]})")
            delta = delta.index_fill(1, idx, 0.0)
        return x2 + delta.reshape(x2.shape)
