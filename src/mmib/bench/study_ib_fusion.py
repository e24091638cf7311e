"""The supervised IB-fusion study (OMIB, IBMA, baselines; docs/results/ib-fusion.md) as suite parts: a per-run
callback and evaluation protocols, registered on import (a suite lists this module under ``imports:``).

* callback ``mmib.bench.study_ib_fusion:r_trace`` — OMIB's dynamic weight r (Eq. 11) per main-phase epoch: the mean
  of r and of R over the epoch's training batches and the fraction of batches with r > 1, written to
  ``<run folder>/r_trace.json`` at every epoch end (a resumed run keeps the epochs it had). Does nothing for a method
  without ``r_history``.
* protocol ``omib_study`` — what OMIB computed besides its prediction: β, the range [M_l, M_u] of Prop. 5.7 and the MINE
  estimates H(v_m), I(v_i; v_j) (from the run, or for a reloaded run from OMIB's MINE cache when they are there); the test accuracy of each
  unimodal task-relevance branch TRB_m on [z_m, e_m] (e_m ~ N(0, I), seeded); the r trace of the callback
  (first / last main epoch, the mean r of the first and the last epoch, the smallest and largest epoch mean, the
  fraction of batches and of epochs with r > 1; the per-epoch values are in the run folder's ``r_trace.json``).
* protocol ``omib_reference`` — Table 2's reference classifiers: a logistic regression on ground-truth blocks of
  ``omib_sim`` ([a0], [a1; a2], each modality's blocks, the authentic optimal MIB [a0; a1; a2], the union), fitted on
  the run's train split and scored on its test split; independent of the method (cached per split under
  ``$MMIB_CACHE_DIR/omib_reference``, default
  ``~/.cache/mmib/omib_reference``).
* protocol ``omib_probes`` — claim 10, what the fused representation keeps: test R² of a ridge regression (fitted on
  the train split, standardized) from the fused representation to, for each relevant block a_i, its contribution
  <δ_i, a_i> to the label's hyperplane (all a representation needs of it), and for each superfluous block b_i a fixed
  random unit projection of it (any linear trace); plus the per-coordinate R² of whole blocks (``coord/<block>``),
  which is ~0 for any representation when a block has hundreds of coordinates and a one-dimensional decision
  direction. δ is redrawn with the data set's generator and checked against the run's labels and blocks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mmib.bench.extensions import register_protocol
from mmib.errors import MMIBError, UnknownNameError
from mmib.utils.cache import cache_dir, read_json

R_TRACE_FILE = "r_trace.json"
BLOCKS = ("a0", "a1", "a2", "b0", "b1", "b2")


def _check_options(name: str, options: Mapping[str, Any] | None, valid: dict[str, Any]) -> dict[str, Any]:
    opts = {**valid, **dict(options or {})}
    for k in opts:
        if k not in valid:
            raise UnknownNameError(f"option of protocol '{name}'", str(k), list(valid))
    return opts


# ------------------------------------------------------------------------------------------------ r trace callback
def summarize_r(history: list[tuple], n_r: int) -> list[dict[str, Any]]:
    """Per-epoch summary of OMIB's ``r_history`` entries ``(epoch, step, r_1..r_n, R_1..R_n)``."""
    by_epoch: dict[int, list[tuple]] = {}
    for t in history:
        by_epoch.setdefault(int(t[0]), []).append(t)
    out = []
    for e in sorted(by_epoch):
        rows = np.asarray([t[2:] for t in by_epoch[e]], dtype=np.float64)
        rec: dict[str, Any] = {"epoch": e, "batches": int(rows.shape[0])}
        for i in range(n_r):
            r = rows[:, i]
            rec[f"r_{i + 1}"] = float(r.mean())
            rec[f"frac_r_gt1_{i + 1}"] = float((r > 1).mean())
            if rows.shape[1] >= n_r + i + 1:
                rec[f"R_{i + 1}"] = float(rows[:, n_r + i].mean())
        out.append(rec)
    return out


def r_trace(filename: str = R_TRACE_FILE):
    """Lightning callback factory (suite ``callbacks: ["mmib.bench.study_ib_fusion:r_trace"]``)."""
    import lightning as L

    from mmib.utils.io import atomic_write_json

    class RTrace(L.Callback):
        def __init__(self) -> None:
            self.done = 0  # entries of r_history already summarized

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            hist = getattr(pl_module, "r_history", None)
            if hist is None or not trainer.is_global_zero:
                return
            path = Path(trainer.default_root_dir) / filename
            old = json.loads(path.read_text()) if path.is_file() else {"epochs": []}
            new = summarize_r(hist[self.done:], int(pl_module.n_mod) - 1)
            self.done = len(hist)
            if not new:
                return
            seen = {int(r["epoch"]) for r in new}
            epochs = [r for r in old.get("epochs", []) if int(r["epoch"]) not in seen] + new
            atomic_write_json(path, {"r_mode": getattr(pl_module, "r_mode", None),
                                     "epochs": sorted(epochs, key=lambda r: r["epoch"])})

    return RTrace()


# ------------------------------------------------------------------------------------------------ omib_study
def _accuracy(logits, y) -> float:
    return float((logits.argmax(1).cpu() == y.cpu()).double().mean())


def _cached_information(m, dm):
    """The MINE estimates of a reloaded run (``method.information`` is not in the checkpoint) from OMIB's MINE cache,
    when the run's training split and MINE settings are there; never estimated anew here."""
    import torch

    from mmib.info.omib_information import mine_cache_path
    from mmib.methods.omib import parse_information

    mc = dict(getattr(m, "mine_cfg", None) or {})
    if not mc.get("cache", True) or not all(k in mc for k in ("steps", "batch_size", "lr", "hidden_dim", "seed")):
        return None
    tr = dm.split_batch("train")
    n = int(next(iter(tr["x"].values())).shape[0])
    idx = torch.randperm(n, generator=torch.Generator().manual_seed(int(mc["seed"])))[: int(mc.get("max_samples", n))]
    views = [tr["x"][k][idx].reshape(len(idx), -1).float().cpu() for k in m.mods]
    cached = read_json(mine_cache_path(views, {k: mc[k] for k in ("steps", "batch_size", "lr", "hidden_dim", "seed")}))
    return parse_information(cached, m.n_mod) if cached is not None else None


@register_protocol("omib_study", replace=True)
def omib_study(ctx, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    import torch

    from mmib.data.dataset import batch_to_device

    opts = _check_options("omib_study", options, {"split": "test"})
    m = ctx.method
    if not hasattr(m, "unimodal_predict") or not hasattr(m, "beta_lower"):
        raise MMIBError(f"protocol 'omib_study' needs an OMIB method, got '{m.name}'")
    m.eval()
    b = ctx.dm.split_batch(opts["split"])
    y = b["y"]
    rows = []
    beta = {"beta": float(m.beta), "M_l": float(m.beta_lower), "M_u": float(m.beta_upper)}
    info = getattr(m, "information", None)
    if info is None:
        info = _cached_information(m, ctx.dm)
    if info is not None:
        for i, h in enumerate(info.entropies):
            beta[f"H_{m.mods[i]}"] = float(h)
        for k, v in dict(info.mutual_informations).items():
            i, j = k if isinstance(k, tuple) else str(k).split(",")
            beta[f"I_{int(i)}_{int(j)}"] = float(v)
    rows.append({"id": "omib/beta", "source": "method", "label": "β and Prop. 5.7's range", "metrics": beta})
    bd = batch_to_device(b, m.device)
    with torch.no_grad():
        for mod in m.mods:
            acc = _accuracy(m.unimodal_predict(bd, mod, seed=ctx.seed), y)
            rows.append({"id": f"omib/trb/{mod}", "source": "method", "label": f"TRB_{mod} on [z, e] (unimodal)",
                         "metrics": {"accuracy": acc}, "chance": {}})
    notes = [f"{opts['split']} split: {len(y)} rows"]
    trace = Path(ctx.run_dir) / R_TRACE_FILE if ctx.run_dir is not None else None
    if trace is not None and trace.is_file():
        epochs = json.loads(trace.read_text()).get("epochs", [])
        for i, mod in enumerate(m.mods[1:]):
            key = f"r_{i + 1}"
            ep = [e for e in epochs if key in e]
            if not ep:
                continue
            n = sum(e["batches"] for e in ep)
            met = {"first_main_epoch": float(ep[0]["epoch"]), "last_epoch": float(ep[-1]["epoch"]),
                   "mean_r_first": ep[0][key], "mean_r_last": ep[-1][key],
                   "frac_r_gt1": sum(e[f"frac_r_gt1_{i + 1}"] * e["batches"] for e in ep) / n,
                   "frac_epochs_mean_r_gt1": float(np.mean([e[key] > 1 for e in ep]))}
            met["min_epoch_mean_r"] = float(min(e[key] for e in ep))
            met["max_epoch_mean_r"] = float(max(e[key] for e in ep))
            rows.append({"id": f"omib/r/{mod}", "source": "method", "label": f"r for {mod} (Eq. 11, {m.r_mode})",
                         "metrics": met})
    else:
        notes.append("no r trace (the run had no r_trace callback)")
    return {"protocol": "omib_study", "options": opts, "plots": {}, "primary_metric": "accuracy", "notes": notes,
            "rows": rows}


# ------------------------------------------------------------------------------------------------ omib_reference
def _cache_dir() -> Path:
    return cache_dir("omib_reference")


@register_protocol("omib_reference", replace=True)
def omib_reference(ctx, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    from mmib.data.synthetic.omib_sim import reference_classifiers
    from mmib.utils.io import atomic_write_json

    opts = _check_options("omib_reference", options, {"cache": True})
    dm = ctx.dm
    tr, te = dm.split_batch("train"), dm.split_batch("test")
    if "latents" not in tr or not set(BLOCKS) <= set(tr["latents"]):
        raise MMIBError(f"protocol 'omib_reference' needs omib_sim's blocks {list(BLOCKS)} as latents; "
                        f"data set '{ctx.spec.name}' has {sorted(tr.get('latents') or {})}")
    lat = {k: np.concatenate([tr["latents"][k].numpy(), te["latents"][k].numpy()]) for k in BLOCKS}
    y = np.concatenate([tr["y"].numpy(), te["y"].numpy()])
    ntr = len(tr["y"])
    h = hashlib.sha256()
    for k in BLOCKS:
        h.update(np.ascontiguousarray(lat[k], dtype=np.float32).tobytes())
    h.update(y.astype(np.int64).tobytes())
    h.update(str(ntr).encode())
    path = _cache_dir() / f"{h.hexdigest()[:24]}.json"
    if opts["cache"] and path.is_file():
        ref = json.loads(path.read_text())
    else:
        ref = reference_classifiers(lat, y, np.arange(ntr), np.arange(ntr, len(y)))
        if opts["cache"]:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(path, ref)
    rows = [{"id": f"reference/{k}", "source": "raw", "label": f"logistic regression on {k}",
             "metrics": {"accuracy": float(v)}, "chance": {}} for k, v in ref.items()]
    return {"protocol": "omib_reference", "options": opts, "plots": {}, "primary_metric": "accuracy",
            "notes": [f"fitted on the train split ({ntr} rows), scored on the test split ({len(y) - ntr} rows)"],
            "rows": rows}


# ------------------------------------------------------------------------------------------------ omib_probes
def _generator_draw(ctx, options: Mapping[str, Any]):
    """The data set's draw (its hyperplane δ): redrawn with the block sizes of the run's latents and the data seed,
    and checked against the run's labels and blocks."""
    from mmib.data.synthetic.omib_sim import make_omib_sim

    ds = ctx.dm.dataset
    full = ds.get_batch(np.arange(len(ds)))
    lat = full.get("latents") or {}
    if not set(BLOCKS) <= set(lat):
        raise MMIBError(f"protocol 'omib_probes' needs omib_sim's blocks {list(BLOCKS)} as latents; data set "
                        f"'{ctx.spec.name}' has {sorted(lat)}")
    w = {b: int(lat[b].shape[1]) for b in BLOCKS}
    seed = int(options.get("data_seed", 0))
    d = make_omib_sim(len(ds), "I", d0=w["a0"], d0_superfluous=w["b0"], d11=w["a1"], d21=w["a2"], d12=w["b1"],
                      d22=w["b2"], seed=seed)
    if not np.array_equal(d.y, full["y"].numpy()) or not all(
            np.allclose(d.blocks[b].astype(np.float32), lat[b].numpy()) for b in BLOCKS):
        raise MMIBError(f"protocol 'omib_probes': could not redraw the data set's hyperplane δ ({len(ds)} samples, "
                        f"block sizes {w}, data seed {seed}); give the data set's seed as option 'data_seed'")
    return d


def ridge_r2(xtr, ytr, xte, yte, alpha: float = 1.0) -> float:
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score
    from sklearn.preprocessing import StandardScaler

    sc = StandardScaler().fit(xtr)
    reg = Ridge(alpha=alpha).fit(sc.transform(xtr), ytr)
    return float(r2_score(yte, reg.predict(sc.transform(xte)), multioutput="uniform_average"))


@register_protocol("omib_probes", replace=True)
def omib_probes(ctx, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    import torch

    from mmib.data.dataset import batch_to_device

    opts = _check_options("omib_probes", options, {"data_seed": 0, "alpha": 1.0, "coordinates": True})
    d = _generator_draw(ctx, opts)
    sizes = {b: d.blocks[b].shape[1] for b in BLOCKS}
    offs, o = {}, 0
    for b in ("a0", "a1", "a2"):
        offs[b] = (o, o + sizes[b])
        o += sizes[b]
    rng = np.random.default_rng(123)
    dirs = {b: d.delta[offs[b][0]:offs[b][1]] for b in ("a0", "a1", "a2")}
    dirs.update({b: rng.standard_normal(sizes[b]) for b in ("b0", "b1", "b2")})
    m = ctx.method
    m.eval()
    tr, te = ctx.dm.split_batch("train"), ctx.dm.split_batch("test")
    with torch.no_grad():
        xtr = m.fuse(batch_to_device(tr, m.device)).double().cpu().numpy()
        xte = m.fuse(batch_to_device(te, m.device)).double().cpu().numpy()
    met = {}
    for b, v in dirs.items():
        u = v / np.linalg.norm(v)
        met[b] = ridge_r2(xtr, tr["latents"][b].numpy() @ u, xte, te["latents"][b].numpy() @ u, opts["alpha"])
    if opts["coordinates"]:
        for b in ("a1", "b1"):
            met[f"coord/{b}"] = ridge_r2(xtr, tr["latents"][b].numpy(), xte, te["latents"][b].numpy(), opts["alpha"])
    notes = ["a_i: target <δ_i, a_i>/||δ_i|| (the block's contribution to the label's hyperplane); b_i: a fixed random "
             "unit projection (seed 123); coord/<block>: mean R² over the block's coordinates"]
    return {"protocol": "omib_probes", "options": opts, "plots": {}, "primary_metric": "a1", "notes": notes,
            "rows": [{"id": "fused/ridge", "source": "method", "label": "ridge R² from the fused representation",
                      "metrics": met}]}
