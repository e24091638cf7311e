"""Many linear probes trained together (:func:`fit_linear_probes`): one feature block per modality, one problem per
subset of blocks, each the same probe as :func:`~mmib.eval.probe.fit.fit_probe` with ``kind="linear"``."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from mmib.errors import MMIBError
from mmib.eval.metrics import (
    classification_chance,
    classification_metrics,
    regression_chance,
    regression_metrics,
)
from mmib.eval.probe.config import (
    PROBE_DESCRIPTIONS,
    TASKS,
    ProbeConfig,
    ProbeResult,
    _check,
    seeded_module,
    torch_threads,
)


def _standardize_blocks(train: list[np.ndarray], *others: list[np.ndarray] | None):
    """Each block standardized with its train-split statistics (the per-column rule of :func:`fit_probe`)."""
    out = []
    stats = []
    for b in train:
        mean, std = b.mean(0), b.std(0)
        std[std < 1e-8] = 1.0
        stats.append((mean, std))
    for split in (train, *others):
        out.append(None if split is None else [torch.from_numpy((b - m) / s) for b, (m, s) in zip(split, stats)])
    return out


def fit_linear_probes(
    blocks_train: list[np.ndarray], y_train: np.ndarray, blocks_val: list[np.ndarray] | None, y_val: np.ndarray | None,
    blocks_test: list[np.ndarray], y_test: np.ndarray, problems: list[tuple[int, ...]],
    task: str = "classification", n_classes: int | None = None, config: ProbeConfig | None = None,
) -> list[ProbeResult]:
    """Many linear probes trained together: problem ``p`` is the linear probe of :func:`fit_probe` on the
    concatenation of the feature blocks ``problems[p]`` (in that order), e.g. one block per modality and one problem
    per modality subset.

    Same model, initialization (each problem's ``nn.Linear`` drawn from ``config.seed``), standardization, Adam
    update, mini-batch order, loss (plain or class-balanced cross-entropy / least squares) and per-problem early
    stopping as :func:`fit_probe` called once per problem — so the results agree with it up to floating-point
    summation order — but each block's features are multiplied once per step for every problem that uses it (one
    wide matrix product instead of one thin product per problem), and problems that stopped early leave the
    computation. This is what makes the 2^M − 1 subset probes of ``mmib eval`` cheap.
    """
    cfg = config or ProbeConfig()
    if cfg.kind != "linear":
        raise MMIBError(f"fit_linear_probes: only the linear probe is batched, got {cfg.kind!r}")
    if task not in TASKS:
        raise MMIBError(f"probe: task must be classification or regression, got {task!r}")
    if y_train is None or y_test is None:
        raise MMIBError("probe: targets are missing (does the data set have labels?)")
    if not problems or any(len(p) == 0 for p in problems):
        raise MMIBError("fit_linear_probes: every problem needs at least one feature block")
    nb = len(blocks_train)
    bad = [b for p in problems for b in p if not 0 <= b < nb]
    if bad:
        raise MMIBError(f"fit_linear_probes: block index {bad[0]} out of range (0..{nb - 1})")
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    has_val = blocks_val is not None and y_val is not None and len(y_val) > 0
    xtr = [_check(b, "train", len(y_train)) for b in blocks_train]
    xte = [_check(b, "test", len(y_test)) for b in blocks_test]
    xva = [_check(b, "val", len(y_val)) for b in blocks_val] if has_val else None
    for i in range(nb):
        if xte[i].shape[1] != xtr[i].shape[1] or (xva is not None and xva[i].shape[1] != xtr[i].shape[1]):
            raise MMIBError(f"probe: feature dimensions of block {i} differ between splits")
    with torch_threads(cfg.threads):
        return _fit_linear_probes(xtr, y_train, xva, y_val if has_val else None, xte, y_test, problems, task,
                                  n_classes, cfg)


def _fit_linear_probes(xtr, y_train, xva, y_val, xte, y_test, problems, task, n_classes, cfg) -> list[ProbeResult]:
    # Layout: logits (problems, outputs, rows), so that every reduction over the outputs runs along contiguous rows;
    # block b's weights (problems using b, outputs, d_b), as nn.Linear stores them. Forward, gradient and Adam are
    # written out (no autograd): the loss of problem p depends only on its own weights, so each problem receives
    # exactly the gradient it would receive alone.
    Xtr, Xva, Xte = _standardize_blocks(xtr, xva, xte)
    dims = [b.shape[1] for b in xtr]
    weight = None
    if task == "classification":
        if y_train.ndim != 1 or not np.issubdtype(y_train.dtype, np.integer):
            raise MMIBError(f"probe: classification targets must be 1-D integer class indices, got "
                            f"{y_train.dtype} of shape {y_train.shape}")
        k = int(max(np.max(y_train), np.max(y_test), np.max(y_val) if y_val is not None else 0)) + 1
        n_classes = int(n_classes or k)
        if k > n_classes or np.min(y_train) < 0:
            raise MMIBError(f"probe: class labels must lie in 0..{n_classes - 1}, got labels up to {k - 1}")
        out_dim = n_classes
        if cfg.class_weight == "balanced":
            counts = np.bincount(y_train, minlength=n_classes).astype(np.float64)
            present = counts > 0
            w = np.zeros(n_classes)
            w[present] = len(y_train) / (present.sum() * counts[present])
            weight = torch.as_tensor(w, dtype=torch.float32)

        def target(y):  # (rows,) class indices -> (class indices, per-row weight / total weight)
            y = torch.as_tensor(np.asarray(y), dtype=torch.long)
            wy = torch.ones(len(y)) if weight is None else weight[y]
            return y, wy / wy.sum()

        def loss_and_grad(logits, t, grad=True):  # (P, C, n), overwritten -> per-problem loss (P,), dL/dlogits
            y, wn = t
            at = y.view(1, 1, -1).expand(logits.shape[0], 1, -1)  # each row's class, in every problem
            z = logits.sub_(logits.amax(1, keepdim=True))
            nll = z.gather(1, at).squeeze(1)  # the true class's z (P, n)
            ez = z.exp_()
            se = ez.sum(1, keepdim=True)
            loss = (se.log().squeeze(1) - nll) @ wn
            if not grad:
                return loss, None
            # (softmax − one-hot) · row weight, in place: the same arithmetic as ez / se − onehot, then · wn
            return loss, ez.div_(se).scatter_add_(1, at, torch.full(at.shape, -1.0)).mul_(wn)
    else:
        out_dim = int(y_train.reshape(len(y_train), -1).shape[1])
        yt = y_train.reshape(len(y_train), -1).astype(np.float32)
        y_mean, y_std = torch.from_numpy(yt.mean(0)), torch.from_numpy(np.maximum(yt.std(0), 1e-8))

        def target(y):
            t = torch.as_tensor(np.asarray(y), dtype=torch.float32).reshape(len(y), -1)
            return ((t - y_mean) / y_std).T.contiguous()

        def loss_and_grad(logits, t, grad=True):
            r = logits - t
            loss = (r * r).mean(dim=(1, 2))
            return loss, (r.mul_(2.0 / (r.shape[1] * r.shape[2])) if grad else None)

    n_prob = len(problems)
    users = [[p for p, prob in enumerate(problems) if b in prob] for b in range(len(dims))]
    slot = {(p, b): users[b].index(p) for p, prob in enumerate(problems) for b in prob}
    params = [torch.zeros(len(u), out_dim, dims[b]) for b, u in enumerate(users)] + [torch.zeros(n_prob, out_dim)]
    for p, prob in enumerate(problems):
        # fit_probe's initialization, problem by problem
        lin = seeded_module(lambda prob=prob: nn.Linear(sum(dims[b] for b in prob), out_dim), cfg.seed)
        start = 0
        for b in prob:
            params[b][slot[(p, b)]] = lin.weight.data[:, start : start + dims[b]]
            start += dims[b]
        params[-1][p] = lin.bias.data
    beta1, beta2, eps = 0.9, 0.999, 1e-8  # torch.optim.Adam's defaults, as fit_probe uses them

    # The active problems' parameters and Adam moments are kept in compact tensors (rows of the active problems
    # only), rebuilt when problems stop: a stopped problem costs nothing afterwards (its best state is kept aside).
    class Active:
        def __init__(self, problems_on: torch.Tensor, state: list[tuple[torch.Tensor, torch.Tensor]] | None):
            self.ids = problems_on
            pos = {p: i for i, p in enumerate(problems_on.tolist())}
            # per block: the rows (slots) of its active users and their positions among the active problems
            self.rows = [torch.as_tensor([i for i, p in enumerate(u) if p in pos], dtype=torch.long) for u in users]
            self.pos = [torch.as_tensor([pos[u[i]] for i in r.tolist()], dtype=torch.long)
                        for u, r in zip(users, self.rows)]
            self.rows.append(problems_on)
            self.w = [q[r] for q, r in zip(params, self.rows)]
            if state is None:
                self.m = [torch.zeros_like(w) for w in self.w]
                self.v = [torch.zeros_like(w) for w in self.w]
            else:
                self.m = [m[r] for (m, _), r in zip(state, self.rows)]
                self.v = [v[r] for (_, v), r in zip(state, self.rows)]

        def store(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
            """Write the compact parameters back into ``params``; the full-size Adam moments."""
            full = []
            for q, r, w, m, v in zip(params, self.rows, self.w, self.m, self.v):
                q[r] = w
                mm_, vv = torch.zeros_like(q), torch.zeros_like(q)
                mm_[r], vv[r] = m, v
                full.append((mm_, vv))
            return full

        def logits(self, X: list[torch.Tensor]) -> torch.Tensor:
            """(active, C, n) logits; X: the blocks' (n, d_b) features."""
            n = X[0].shape[0]
            out = self.w[-1].unsqueeze(2).repeat(1, 1, n)
            for b in range(len(dims)):
                k = len(self.rows[b])
                if k:
                    part = torch.mm(self.w[b].view(k * out_dim, dims[b]), X[b].T).view(k, out_dim, n)
                    out.index_add_(0, self.pos[b], part)
            return out

        def adam_step(self, grad_logits: torch.Tensor, X: list[torch.Tensor], t: int) -> None:
            grads = []
            for b in range(len(dims)):
                k = len(self.rows[b])
                gl = grad_logits.index_select(0, self.pos[b]).view(k * out_dim, -1) if k else None
                grads.append(torch.mm(gl, X[b]).view(k, out_dim, dims[b]) if k else None)
            grads.append(grad_logits.sum(2))
            c1, c2 = 1 - beta1 ** t, 1 - beta2 ** t
            for q, g, m, v in zip(self.w, grads, self.m, self.v):
                if not len(q):
                    continue
                if cfg.weight_decay:
                    g.add_(q, alpha=cfg.weight_decay)
                m.lerp_(g, 1 - beta1)
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                q.addcdiv_(m, (v.sqrt() / math.sqrt(c2)).add_(eps), value=-cfg.lr / c1)

    Ttr = target(y_train)
    Tva = target(y_val) if Xva is not None else None
    g = torch.Generator().manual_seed(int(cfg.seed))
    n = len(y_train)
    bs = min(int(cfg.batch_size), n)
    best = torch.full((n_prob,), float("inf"))
    best_state: list[torch.Tensor] | None = None
    bad = torch.zeros(n_prob, dtype=torch.long)
    max_epochs, patience = cfg.schedule(n, Xva is not None)
    stopped_at = torch.full((n_prob,), max_epochs, dtype=torch.long)
    act = Active(torch.arange(n_prob), None)
    step = 0
    for epoch in range(1, max_epochs + 1):
        perm = torch.randperm(n, generator=g) if bs < n else None
        for start in range(0, n, bs):
            if perm is None:
                Xb, Tb = Xtr, Ttr
            else:
                idx = perm[start : start + bs]
                Xb = [x[idx] for x in Xtr]
                if task == "classification":
                    Tb = (Ttr[0][idx], Ttr[1][idx] / Ttr[1][idx].sum())
                else:
                    Tb = Ttr[:, idx]
            per, gl = loss_and_grad(act.logits(Xb), Tb)
            if not bool(torch.isfinite(per).all()):
                raise MMIBError(f"probe (linear): the training loss became {float(per.sum())} at epoch {epoch}; "
                                "lower the probe's lr")
            step += 1
            act.adam_step(gl, Xb, step)
        if Xva is None:
            continue
        with torch.no_grad():
            vl, _ = loss_and_grad(act.logits(Xva), Tva, grad=False)
        active = act.ids
        better = vl < best[active] - 1e-6
        if best_state is None:
            for q, r, w in zip(params, act.rows, act.w):
                q[r] = w
            best_state = [q.clone() for q in params]
        if bool(better.any()):
            best[active[better]] = vl[better]
            bad[active[better]] = 0
            for b in range(len(dims) + 1):  # the improved problems' current parameters become their best
                sel = better.index_select(0, act.pos[b]) if b < len(dims) else better
                if bool(sel.any()):
                    best_state[b][act.rows[b][sel]] = act.w[b][sel]
        bad[active[~better]] += 1
        done = bad[active] >= patience
        if bool(done.any()):
            stopped_at[active[done]] = epoch
            if bool(done.all()):
                break
            act = Active(active[~done], act.store())
    if best_state is not None:
        params[:] = best_state
    else:
        act.store()
    out = Active(torch.arange(n_prob), None).logits(Xte)  # (P, C, n_test)
    description = PROBE_DESCRIPTIONS[task]["linear"]
    if task == "classification" and cfg.class_weight == "balanced":
        description = description.replace("(cross-entropy)", "(class-balanced cross-entropy)")
    results = []
    for p, prob in enumerate(problems):
        o = out[p].T
        if task == "classification":
            pred = o.argmax(1).numpy()
            metrics, chance = classification_metrics(y_test, pred), classification_chance(y_train, y_test)
        else:
            pred = (o * y_std + y_mean).numpy()
            metrics = regression_metrics(y_test.astype(np.float32), pred)
            chance = regression_chance(y_train, y_test)
        results.append(ProbeResult(
            metrics=metrics, chance=chance, probe="linear", description=description,
            epochs=int(stopped_at[p]) if Xva is not None else max_epochs,
            best_val_loss=float(best[p]) if Xva is not None else float("nan"), n_train=n,
            n_val=0 if Xva is None else len(y_val), n_test=len(y_test), dim=sum(dims[b] for b in prob),
            predictions=pred))
    return results
