"""The decomposition study: which information (redundant, unique, synergistic) each method's representation holds,
read out by CE-trained linear probes (``mmib.eval.probe.train_probe``, kind="linear"; spec D.3.1).

Parts (``--part``):

* ``rus``: the R/U/S generator (spec D.4): every method pretrained on unbiased data (CoMM and Cross also on the
  biased variant, spec D.3.7), a randomly initialised CoMM as control (D.3.8); linear probes of the synergy label,
  the redundant code and the unique codes; balanced accuracy on the test split;
* ``sweep``: FactorCL's shared/unique generator over the ratio of unique information (FactorCL Fig. 1 analogue):
  label probe accuracy per method vs unique ratio, with a plot;
* ``rus-table``: the Markdown table of a ``rus`` results file;
* ``sweep-table``: the Markdown table (unique ratio × method) of a ``sweep`` results file and its plot
  (``--plot``, default docs/results/decomposition/unique_sweep.png).

Sizes are chosen for a 2-core CPU. Results go to ``--out`` (JSON, one record per run) and a Markdown summary is
printed; ``--report`` writes docs/results/decomposition.md from the JSON.

    .venv/bin/python benchmarks/decomposition_study.py --part rus --seeds 0 1 2 --out runs/decomposition/rus.json
    .venv/bin/python benchmarks/decomposition_study.py --part sweep --seeds 0 1 2 --epochs 20 --n-samples 4000 \
        --out runs/decomposition/sweep.json
    .venv/bin/python benchmarks/decomposition_study.py --part sweep-table --out runs/decomposition/sweep.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from mmib.config import compose_config, to_container
from mmib.data.datamodule import MultimodalDataModule
from mmib.data.registry import build_dataset
from mmib.engine import train
from mmib.eval.probe import ProbeConfig, train_probe
from mmib.eval.representations import method_representation
from mmib.methods.registry import build_method

SMALL_ENCODER = ["encoder.vector.hidden=[128,128]"]
METHOD_OVERRIDES: dict[str, list[str]] = {
    "comm": ["method.embed_dim=64", "method.vector_tokens=8", "method.fusion.n_heads=4",
             "method.fusion.dim_feedforward=128", "method.head_hidden=256", "method.projection_dim=128",
             "method.optim.lr=1e-3"],
    "cross": ["method.representation_dim=64", "method.embed_dim=64", "method.optim.lr=1e-3"],
    "cross_self": ["method.representation_dim=64", "method.embed_dim=64", "method.self_head_hidden=256",
                   "method.self_embed_dim=64", "method.optim.lr=1e-3"],
    "factorcl_ssl": ["method.representation_dim=64", "method.head_dim=64", "method.head_hidden=[64]",
                     "method.critic_hidden=[128]", "method.optim.lr=1e-3", "method.optim.club_lr=1e-3"],
    "factorcl_sup": ["method.representation_dim=64", "method.head_dim=64", "method.head_hidden=[64]",
                     "method.critic_hidden=[128]", "method.optim.lr=1e-3", "method.optim.club_lr=1e-3"],
    "supcon": ["method.representation_dim=64", "method.embed_dim=64", "method.optim.lr=1e-3"],
}
BATCH = {"factorcl_ssl": 128, "factorcl_sup": 128}


def _cfg(method: str, data: str, seed: int, epochs: int, extra: list[str], run_dir: str) -> dict:
    over = [f"method={method}", f"data={data}", f"seed={seed}", f"trainer.max_epochs={epochs}",
            "trainer.enable_progress_bar=false", "trainer.check_val_every_n_epoch=1000", f"run_dir={run_dir}",
            "trainer.checkpoint_every_n_epochs=1000", *SMALL_ENCODER, *METHOD_OVERRIDES.get(method.split(":")[0], []),
            f"data.batch_size={BATCH.get(method, 256)}", *extra]
    return to_container(compose_config(over))


def _features(method, dm: MultimodalDataModule, rep: str) -> dict[str, np.ndarray]:
    out = {}
    method.eval()
    for split in ("train", "val", "test"):
        idx = dm.indices[split]
        feats = []
        for s in range(0, len(idx), 1024):
            b = dm.dataset.get_batch(idx[s : s + 1024])
            with torch.no_grad():
                feats.append(method_representation(method, b, None, rep).float().numpy())
        out[split] = np.concatenate(feats)
    return out


def _raw(dm: MultimodalDataModule) -> dict[str, np.ndarray]:
    out = {}
    for split in ("train", "val", "test"):
        b = dm.dataset.get_batch(dm.indices[split])
        out[split] = torch.cat([b["x"][m] for m in dm.spec.modality_names], 1).numpy()
    return out


def _probe(feats: dict[str, np.ndarray], dm: MultimodalDataModule, latent: str, seed: int) -> float:
    lat = dm.dataset.latents[latent].numpy()
    ys = {s: lat[dm.indices[s]] for s in ("train", "val", "test")}
    n_classes = int(dm.spec.latents[latent])
    res = train_probe(feats["train"], ys["train"], feats["val"], ys["val"], feats["test"], ys["test"],
                      task="classification", n_classes=n_classes, config=ProbeConfig(kind="linear", seed=seed))
    return float(res["balanced_accuracy"])


# ---------------------------------------------------------------------------------------------------- R/U/S
RUS_LATENTS = ("synergy", "redundant", "unique_1", "unique_2")


def run_rus(seeds: list[int], epochs: int, out: Path, methods: list[str], n_samples: int, run_dir: str) -> list[dict]:
    records: list[dict] = json.loads(out.read_text()) if out.is_file() else []
    done = {(r["method"], r["pretraining"], r["seed"]) for r in records}
    data_over = [f"data.n_samples={n_samples}"]
    for seed in seeds:
        ds_eval = build_dataset("rus_sim", n_samples=n_samples, seed=seed)
        dm = MultimodalDataModule(ds_eval, batch_size=256, seed=seed)
        jobs = [(m, "unbiased") for m in methods] + [(m, "biased") for m in ("comm", "cross") if m in methods]
        if "comm" in methods:
            jobs.append(("comm", "random_init"))
        if ("raw", "none", seed) not in done:
            feats = _raw(dm)
            records.append({"method": "raw", "pretraining": "none", "seed": seed, "representation": "concat",
                            "probe": {lat: _probe(feats, dm, lat, seed) for lat in RUS_LATENTS}})
            out.write_text(json.dumps(records, indent=1))
        for method, pre in jobs:
            if (method, pre, seed) in done:
                continue
            t0 = time.time()
            extra = data_over + [f"data.seed={seed}", f"name={method}-{pre}-s{seed}"]
            if pre == "biased":
                extra.append("data.biased=true")
            cfg = _cfg(method, "rus_sim", seed, epochs, extra, run_dir)
            if pre == "random_init":
                torch.manual_seed(seed)
                m = build_method(method, ds_eval.spec, cfg["method"], cfg["encoder"])
            else:
                m = train(cfg).method
            reps = ["concat"] + (["fused"] if method == "comm" else [])
            for rep in reps:
                feats = _features(m, dm, rep)
                rec = {"method": method, "pretraining": pre, "seed": seed, "representation": rep,
                       "probe": {lat: _probe(feats, dm, lat, seed) for lat in RUS_LATENTS},
                       "train_seconds": round(time.time() - t0, 1), "epochs": epochs if pre != "random_init" else 0}
                records.append(rec)
                print(json.dumps(rec), flush=True)
            out.write_text(json.dumps(records, indent=1))
    return records


# ---------------------------------------------------------------------------------------------------- sweep
SWEEP_RATIOS = (0.0, 0.25, 0.5, 0.75, 1.0)


def run_sweep(seeds: list[int], epochs: int, out: Path, methods: list[str], n_samples: int, run_dir: str) -> list[dict]:
    records: list[dict] = json.loads(out.read_text()) if out.is_file() else []
    done = {(r["method"], r["unique_ratio"], r["seed"]) for r in records}
    for seed in seeds:
        for ratio in SWEEP_RATIOS:
            ds = build_dataset("factorcl_sim", n_samples=n_samples, unique_ratio=ratio, seed=seed)
            info = ds.information
            for method in ["raw", *methods]:
                if (method, ratio, seed) in done:
                    continue
                t0 = time.time()
                if method == "raw":
                    dm = MultimodalDataModule(ds, batch_size=256, seed=seed)
                    feats = _raw(dm)
                else:
                    cfg = _cfg(method, "factorcl_sim", seed, epochs,
                               [f"data.n_samples={n_samples}", f"data.unique_ratio={ratio}", f"data.seed={seed}",
                                f"name={method}-r{ratio}-s{seed}"], run_dir)
                    res = train(cfg, dataset=ds)
                    dm = res.datamodule
                    feats = _features(res.method, dm, "concat")
                ys = {s: ds.y.numpy()[dm.indices[s]] for s in ("train", "val", "test")}
                acc = train_probe(feats["train"], ys["train"], feats["val"], ys["val"], feats["test"], ys["test"],
                                  n_classes=2, config=ProbeConfig(kind="linear", seed=seed))
                rec = {"method": method, "unique_ratio": ratio, "seed": seed, "accuracy": acc["accuracy"],
                       "information": info, "train_seconds": round(time.time() - t0, 1)}
                records.append(rec)
                print(json.dumps({k: v for k, v in rec.items() if k != "information"}), flush=True)
                out.write_text(json.dumps(records, indent=1))
    return records


def rus_table(records: list[dict]) -> str:
    """Markdown table: (method, pretraining, representation) × latent, balanced accuracy mean ± std over seeds."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["method"], r["pretraining"], r["representation"]), []).append(r)
    lines = ["| method | pretraining | representation | seeds | " + " | ".join(RUS_LATENTS) + " |",
             "|---|---|---|---|" + "---|" * len(RUS_LATENTS)]
    for (m, pre, rep), rs in groups.items():
        cells = []
        for lat in RUS_LATENTS:
            v = np.array([r["probe"][lat] for r in rs]) * 100
            cells.append(f"{v.mean():.1f} ± {v.std():.1f}" if len(v) > 1 else f"{v.mean():.1f}")
        lines.append(f"| {m} | {pre} | {rep} | {len(rs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sweep_table(records: list[dict], plot: Path | None = None) -> str:
    """Markdown table: unique ratio × method, label-probe accuracy (%) mean ± std over seeds; optional line plot."""
    methods = list(dict.fromkeys(r["method"] for r in records))
    ratios = sorted({r["unique_ratio"] for r in records})
    cell: dict[tuple, np.ndarray] = {}
    for m in methods:
        for q in ratios:
            cell[(m, q)] = np.array([r["accuracy"] for r in records if r["method"] == m and r["unique_ratio"] == q]) * 100
    lines = ["| method | " + " | ".join(f"ratio {q:g}" for q in ratios) + " |", "|---|" + "---|" * len(ratios)]
    for m in methods:
        cs = []
        for q in ratios:
            v = cell[(m, q)]
            cs.append("—" if v.size == 0 else (f"{v.mean():.1f} ± {v.std(ddof=1):.1f} (n={v.size})" if v.size > 1
                                              else f"{v.mean():.1f} (n=1)"))
        lines.append(f"| {m} | " + " | ".join(cs) + " |")
    if plot is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5.5, 3.6))
        for m in methods:
            qs = [q for q in ratios if cell[(m, q)].size]
            mu = [cell[(m, q)].mean() for q in qs]
            sd = [cell[(m, q)].std(ddof=1) if cell[(m, q)].size > 1 else 0.0 for q in qs]
            ax.errorbar(qs, mu, yerr=sd, marker="o", capsize=3, label=m)
        ax.set_xlabel("unique ratio (share of the label's information that is modality-unique)")
        ax.set_ylabel("label probe accuracy (%)")
        ax.set_title("factorcl_sim: linear probe of the label")
        ax.legend(fontsize=8)
        fig.tight_layout()
        plot.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(plot, dpi=120)
        plt.close(fig)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", choices=["rus", "sweep", "rus-table", "sweep-table"], required=True)
    ap.add_argument("--plot", type=Path, default=Path("docs/results/decomposition/unique_sweep.png"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--n-samples", type=int, default=6000)
    ap.add_argument("--methods", nargs="+", default=["cross", "cross_self", "factorcl_ssl", "comm"])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--run-dir", default="runs/decomposition")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    if a.part == "rus-table":
        print(rus_table(json.loads(a.out.read_text())))
    elif a.part == "sweep-table":
        print(sweep_table(json.loads(a.out.read_text()), a.plot))
    elif a.part == "rus":
        run_rus(a.seeds, a.epochs, a.out, a.methods, a.n_samples, a.run_dir)
    else:
        run_sweep(a.seeds, a.epochs, a.out, a.methods, a.n_samples, a.run_dir)


if __name__ == "__main__":
    main()

