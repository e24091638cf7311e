"""Out-of-modal (OOM) evaluation (COX paper §4, spec §2.5 and §6.6), through the Method interface only (the OOM
modality, the training phase and the anchors come from the declared capability
:meth:`~mmib.methods.base.Method.oom_state`, never from a method's attributes):

* :func:`oom_accuracy` — top-1 accuracy of ``predict`` from the OOM input alone;
* :func:`oom_retrieval` — instance-level R@k between the OOM modality and each IM modality, both directions, on
  paired rows (the gallery is the evaluated split; the correct candidate is the same row), scored with the method's
  own ``score`` on ``embed(space="embedding")``;
* :func:`agreement_accuracy` — accuracy of ``predict`` on the agreement set A and the disagreement set D of the
  optimal heads ``h_k^*`` (``components``: ``hstar:<k>``; Fig. 6);
* :func:`mapping_mmd` / :func:`optimal_head_accuracy` — RBF-MMD between the IM mappings (``map:<k>``) and the OOM
  features (``oom``), and the OOM accuracy of each ``h_k^*`` (Fig. 5);
* :class:`OOMTracker` — a Lightning callback recording these at the end of every n-th training epoch;
* :func:`evaluate_oom` — the final numbers of a trained method on a data module.
"""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L
import numpy as np
import torch

from mmib.data.dataset import batch_to_device, select_batch_rows
from mmib.errors import MMIBError
from mmib.methods.base import Method, OOMState
from mmib.objectives.cox import agreement_mask, mmd_rbf


def _present(batch: dict, modalities: Sequence[str]) -> torch.Tensor:
    n = batch["x"][modalities[0]].shape[0]
    keep = torch.ones(n, dtype=torch.bool)
    for m in modalities:
        if "mask" in batch and m in batch["mask"]:
            keep &= batch["mask"][m].cpu().bool()
    return keep


def oom_state_of(method: Method, epoch: int | None = None) -> OOMState:
    """The method's declared out-of-modal state (:meth:`Method.oom_state`); a one-line error for a method without
    one."""
    state = method.oom_state(epoch)
    if state is None:
        raise MMIBError(f"method '{method.name}' names no OOM modality (Method.oom_state() is None); the OOM "
                        "protocol needs one")
    return state


def oom_modality_of(method: Method) -> str:
    return oom_state_of(method).modality


@torch.no_grad()
def oom_predictions(method, batch: dict, oom: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted classes of ``method.predict`` from the OOM input alone and the labels, on the rows holding it."""
    oom = oom or oom_modality_of(method)
    if "y" not in batch:
        raise MMIBError("oom_accuracy: the batch has no labels 'y'")
    b = select_batch_rows(batch, _present(batch, [oom]))
    if b["y"].shape[0] == 0:
        raise MMIBError(f"oom_accuracy: no row holds the OOM modality '{oom}'")
    method.eval()
    pred = method.predict(batch_to_device({"x": {oom: b["x"][oom]}, **({"lengths": b["lengths"]} if "lengths" in b else {})},
                              method.device), [oom]).argmax(1).cpu()
    return pred, b["y"].cpu()


def oom_accuracy(method, batch: dict, oom: str | None = None) -> float:
    """Top-1 accuracy of ``method.predict`` from the OOM input alone, on the rows holding the OOM modality."""
    pred, y = oom_predictions(method, batch, oom)
    return float((pred == y).float().mean())


def best_permutation_accuracy(pred: torch.Tensor, y: torch.Tensor) -> float:
    """Accuracy after the best one-to-one relabelling of the predicted classes (Hungarian algorithm on the confusion
    matrix; the clustering accuracy). An unsupervised OOM learner that finds the classes but not their names scores
    high here and anywhere from 0 to chance on plain accuracy — below chance when the relabelling it found has few
    fixed points."""
    from scipy.optimize import linear_sum_assignment

    pred = torch.as_tensor(pred).long().cpu().numpy()
    y = torch.as_tensor(y).long().cpu().numpy()
    if pred.shape != y.shape or pred.size == 0:
        raise MMIBError(f"best_permutation_accuracy: need equal non-empty label vectors, got {pred.shape}, {y.shape}")
    k = int(max(pred.max(), y.max())) + 1
    conf = np.zeros((k, k), dtype=np.int64)
    np.add.at(conf, (pred, y), 1)
    rows, cols = linear_sum_assignment(conf, maximize=True)
    return float(conf[rows, cols].sum() / y.size)


def recall_at_k(scores: torch.Tensor, ks: Sequence[int] = (1, 5)) -> dict[int, float]:
    """R@k for a square score matrix whose correct candidate of query i is candidate i (higher = better). A tie with
    the correct candidate counts against it (rank = number of candidates scoring >= the correct one, minus one)."""
    if scores.dim() != 2 or scores.shape[0] != scores.shape[1] or scores.shape[0] == 0:
        raise MMIBError(f"recall_at_k: expected a non-empty square score matrix, got {tuple(scores.shape)}")
    diag = scores.diagonal()[:, None]
    rank = (scores >= diag).sum(dim=1) - 1
    return {int(k): float((rank < int(k)).float().mean()) for k in ks}


@torch.no_grad()
def oom_retrieval(method, batch: dict, oom: str | None = None, im: Sequence[str] | None = None,
                  ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Instance-level R@k between the OOM modality and each IM modality (OOM→IM and IM→OOM) on the rows holding
    both; also the means over IM modalities (``R@k/oom->im``, ``R@k/im->oom``) and the gallery size."""
    oom = oom or oom_modality_of(method)
    im = list(im) if im is not None else [m for m in method.spec.modality_names if m != oom]
    method.eval()
    out: dict[str, float] = {}
    sums: dict[str, list[float]] = {}
    for m in im:
        b = batch_to_device(select_batch_rows(batch, _present(batch, [oom, m])), method.device)
        n = b["x"][oom].shape[0]
        if n < 2:
            raise MMIBError(f"oom_retrieval: fewer than 2 rows hold both '{oom}' and '{m}'")
        e = method.embed(b, [oom, m], space="embedding")
        for direction, q, c in ((f"{oom}->{m}", oom, m), (f"{m}->{oom}", m, oom)):
            r = recall_at_k(method.score({q: e[q]}, e[c]).cpu(), ks)
            for k, v in r.items():
                out[f"R@{k}/{direction}"] = v
                key = f"R@{k}/{'oom->im' if q == oom else 'im->oom'}"
                sums.setdefault(key, []).append(v)
        out["gallery_size"] = float(n)
    out.update({k: float(np.mean(v)) for k, v in sums.items()})
    return out


@torch.no_grad()
def agreement_accuracy(method, batch: dict, oom: str | None = None) -> dict[str, float]:
    """Accuracy of ``predict`` on the agreement set A and the disagreement set D of the optimal heads (Fig. 6):
    ``acc_agree``, ``acc_disagree``, ``frac_disagree`` (NaN for an empty set)."""
    oom = oom or oom_modality_of(method)
    b = batch_to_device(select_batch_rows(batch, _present(batch, [oom])), method.device)
    method.eval()
    comps = method.components(b, [oom])
    stars = [v for k, v in comps.items() if k.startswith("hstar:")]
    if not stars:
        raise MMIBError(f"method '{method.name}' exposes no optimal heads (components 'hstar:<k>')")
    agree = agreement_mask(stars).cpu()
    correct = (method.predict(b, [oom]).argmax(1).cpu() == b["y"].cpu())
    nan = float("nan")
    return {"acc_agree": float(correct[agree].float().mean()) if bool(agree.any()) else nan,
            "acc_disagree": float(correct[~agree].float().mean()) if bool((~agree).any()) else nan,
            "frac_disagree": float((~agree).float().mean())}


@torch.no_grad()
def optimal_head_accuracy(method, batch: dict, oom: str | None = None) -> dict[str, float]:
    """OOM accuracy of each optimal head ``h_k^*`` (trained on the IM mappings) applied to ``z^O`` (Fig. 5)."""
    oom = oom or oom_modality_of(method)
    b = batch_to_device(select_batch_rows(batch, _present(batch, [oom])), method.device)
    method.eval()
    comps = method.components(b, [oom])
    y = b["y"].cpu()
    return {f"hstar_acc/{k.split(':', 1)[1]}": float((v.argmax(1).cpu() == y).float().mean())
            for k, v in comps.items() if k.startswith("hstar:")}


@torch.no_grad()
def mapping_mmd(method, im_batch: dict, oom_batch: dict, oom: str | None = None, n_max: int = 500,
                seed: int = 0) -> dict[str, float]:
    """RBF-MMD² (median-heuristic bandwidth) between each IM mapping ``m_k`` of ``im_batch``'s rows and the OOM
    features of ``oom_batch``'s rows, on at most ``n_max`` seeded rows of each (Fig. 5)."""
    oom = oom or oom_modality_of(method)
    im = [m for m in method.spec.modality_names if m != oom]
    g = torch.Generator().manual_seed(int(seed))
    ib = select_batch_rows(im_batch, _present(im_batch, im))
    ob = select_batch_rows(oom_batch, _present(oom_batch, [oom]))
    ni, no = ib["x"][im[0]].shape[0], ob["x"][oom].shape[0]
    if ni < 2 or no < 2:
        raise MMIBError("mapping_mmd: needs at least 2 IM rows and 2 OOM rows")
    ib = select_batch_rows(ib, _mask_of(torch.randperm(ni, generator=g)[:n_max], ni))
    ob = select_batch_rows(ob, _mask_of(torch.randperm(no, generator=g)[:n_max], no))
    method.eval()
    z = method.components(batch_to_device(ob, method.device), [oom])["oom"]
    maps = method.components(batch_to_device(ib, method.device), im)
    return {f"mmd/{m}": float(mmd_rbf(maps[f"map:{m}"], z)) for m in im}


def _mask_of(idx: torch.Tensor, n: int) -> torch.Tensor:
    keep = torch.zeros(n, dtype=torch.bool)
    keep[idx] = True
    return keep


def evaluate_oom(method, dm, split: str = "test", ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Final OOM numbers of a trained method: accuracy, the accuracy after the best relabelling of the predicted
    classes (``acc_best_perm``), retrieval (if the split has paired rows), and for methods
    with optimal heads the A/D accuracies, h_k^* accuracies and MMD (train-split IM mappings vs test OOM features)."""
    batch = dm.split_batch(split)
    oom = oom_modality_of(method)
    pred, y = oom_predictions(method, batch, oom)
    out = {"accuracy": float((pred == y).float().mean()), "acc_best_perm": best_permutation_accuracy(pred, y)}
    try:
        out.update(oom_retrieval(method, batch, oom, ks=ks))
    except MMIBError:
        pass
    comps_ok = any(k.startswith("hstar:") for k in method.components(
        batch_to_device(select_batch_rows(batch, _present(batch, [oom])), method.device), [oom]))
    if comps_ok:
        out.update(agreement_accuracy(method, batch, oom))
        out.update(optimal_head_accuracy(method, batch, oom))
        out.update(mapping_mmd(method, dm.split_batch("train"), batch, oom))
    return out


@torch.no_grad()
def disagreement_entropy(method, batch: dict, oom: str | None = None) -> dict[str, float]:
    """Mean entropy (nats) of ``predict``'s posterior on the agreement set A and the disagreement set D of the
    optimal heads (evaluation only): ``entropy_agree``, ``entropy_disagree`` (NaN for an empty set). log C is the
    uniform posterior's entropy; a value near it on D means h^O answers D with a flat, class-prior-like blend."""
    oom = oom or oom_modality_of(method)
    b = batch_to_device(select_batch_rows(batch, _present(batch, [oom])), method.device)
    method.eval()
    stars = [v for k, v in method.components(b, [oom]).items() if k.startswith("hstar:")]
    if not stars:
        raise MMIBError(f"method '{method.name}' exposes no optimal heads (components 'hstar:<k>')")
    agree = agreement_mask(stars).cpu()
    logp = torch.log_softmax(method.predict(b, [oom]), dim=1).cpu()
    ent = -(logp.exp() * logp).sum(1)
    nan = float("nan")
    return {"entropy_agree": float(ent[agree].mean()) if bool(agree.any()) else nan,
            "entropy_disagree": float(ent[~agree].mean()) if bool((~agree).any()) else nan}


@torch.no_grad()
def anchor_label_accuracy(method, train_batch: dict) -> dict[str, float]:
    """Accuracy of the method's current anchor pseudo-labels (``oom_state().anchors``: row ids, labels) against
    the hidden labels of those training rows — the Eq. 14 warm-up anchors / emergent anchors of COX (spec §7.3.6).
    Evaluation only: the labels come from ``train_batch``, never from the method. NaN without anchors."""
    anchors = oom_state_of(method).anchors
    if anchors is None:
        raise MMIBError(f"anchor_label_accuracy: method '{method.name}' declares no anchors (OOMState.anchors)")
    rows, labels = anchors
    out = {"n_anchor": float(len(rows)), "anchor_acc": float("nan")}
    if len(rows) == 0:
        return out
    index, y = train_batch["index"].cpu().long(), train_batch["y"].cpu().long()
    y_of = torch.full((int(max(int(index.max()), int(rows.max()))) + 1,), -1, dtype=torch.long)
    y_of[index] = y
    truth = y_of[rows.long()]
    if bool((truth < 0).any()):
        raise MMIBError("anchor_label_accuracy: an anchor row is not in the training batch")
    out["anchor_acc"] = float((truth == labels.long()).float().mean())
    return out


class OOMTracker(L.Callback):
    """Record OOM accuracy, A/D accuracies (Fig. 6), h_k^* accuracies, mapping MMD (Fig. 5) and the posterior
    entropy on A/D on ``split``, the training phase for methods whose :meth:`~mmib.methods.base.Method.oom_state`
    has one, and for those with anchors the accuracy of this epoch's anchor pseudo-labels against the hidden training
    labels, at the end of every ``every_n_epochs``-th training epoch into :attr:`history` (a list of dicts).
    Evaluation only: nothing recorded here reaches a loss."""

    def __init__(self, dm, split: str = "test", every_n_epochs: int = 1, with_heads: bool = True):
        super().__init__()
        if every_n_epochs < 1:
            raise MMIBError(f"OOMTracker: every_n_epochs must be >= 1, got {every_n_epochs}")
        self.dm, self.split, self.every = dm, split, int(every_n_epochs)
        self.with_heads = with_heads
        self.history: list[dict[str, float]] = []
        self._batch = None
        self._train = None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module) -> None:
        epoch = trainer.current_epoch
        if (epoch + 1) % self.every:
            return
        if self._batch is None:
            self._batch = self.dm.split_batch(self.split)
            self._train = self.dm.split_batch("train")
        was = pl_module.training
        rec: dict[str, float] = {"epoch": float(epoch + 1)}
        state = oom_state_of(pl_module, epoch)
        if state.phase is not None:
            rec["phase"] = state.phase
        rec["accuracy"] = oom_accuracy(pl_module, self._batch)
        if self.with_heads:
            rec.update(agreement_accuracy(pl_module, self._batch))
            rec.update(optimal_head_accuracy(pl_module, self._batch))
            rec.update(mapping_mmd(pl_module, self._train, self._batch))
            rec.update(disagreement_entropy(pl_module, self._batch))
        if state.anchors is not None:  # evaluation only: hidden labels, no training
            rec.update(anchor_label_accuracy(pl_module, self._train))
        pl_module.train(was)
        self.history.append(rec)
