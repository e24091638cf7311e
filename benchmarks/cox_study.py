"""COX study: scenarios x (COX, ablations, baselines) x seeds on the OOM data sets; writes JSON + a Markdown table.

    .venv/bin/python benchmarks/cox_study.py --scenario semi --seeds 0 1 2 --out /tmp/cox_semi.json
    .venv/bin/python benchmarks/cox_study.py --scenario unsup --seeds 0 1 2 --out /tmp/cox_unsup.json
    .venv/bin/python benchmarks/cox_study.py --report /tmp/cox_semi.json /tmp/cox_unsup.json > docs/results/cox_tables.md

Every run trains through ``mmib.engine.train`` (the same path as ``mmib train``), records the OOM test metrics of
``mmib.eval.oom.evaluate_oom`` and, for COX runs, the per-epoch A/D accuracies and MMD (``OOMTracker``). The data
seed equals the run seed (each seed draws a new testbed). Small sizes: minutes per run on one CPU core.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

SEMI = [
    ("Random", "cox_random", []),
    ("ERM", "cox_erm", []),
    ("EntMin", "cox_entmin", []),
    ("MoCo+EntMin", "cox_moco", []),
    ("COX", "cox", []),
    ("COX w/o connection", "cox", ["method.ablation=no_connection"]),
    ("COX w/o exploration", "cox", ["method.ablation=no_exploration"]),
    ("COX (KL per pair, ours)", "cox", ["method.kl.normalizer=num_pairs"]),
    ("COX (Eq. 13 anchors only)", "cox", ["method.semi_anchor_mode=labeled"]),
    ("Aligned (oracle)", "cox_aligned", []),
]
#: single-seed side study of the exploration term (semi): the KL alternatives the spec exposes (``--grid side``)
SEMI_SIDE = [
    ("COX", "cox", []),
    ("COX (forward KL)", "cox", ["method.kl.direction=forward"]),
    ("COX (kl_weight 0.1)", "cox", ["method.kl_weight=0.1"]),
]
UNSUP = [
    ("Random", "cox_random", []),
    ("SSL", "cox_ssl", []),
    ("MoCo", "cox_moco", []),
    ("COX", "cox", []),
    ("COX + MMD init (ours)", "cox", ["method.warmup_selection=mmd"]),
    ("COX w/o warm-up", "cox", ["method.ablation=no_warmup"]),
]


def run_one(label: str, method: str, extra: list[str], scenario: str, seed: int, args) -> dict:
    from mmib.config import compose_config
    from mmib.engine import build_datamodule, train
    from mmib.eval.oom import OOMTracker, evaluate_oom

    data = [f"data={args.data}", f"data.scenario={scenario}", f"data.seed={seed}"]
    if args.data == "cox_mfeat":
        data += [f"data.oom_view={args.oom_view}", "method.perceptor.type=pretrain"]
    over = [f"method={method}", f"method.scenario={scenario}", f"trainer.max_epochs={args.epochs}",
            "trainer.enable_progress_bar=false", f"run_dir={args.run_dir}", f"seed={seed}",
            f"name={method}-{scenario}-{abs(hash(tuple(extra))) % 10**6}-s{seed}", *data, *extra]
    cfg = compose_config(over)
    dm = build_datamodule(cfg)
    trackers = [OOMTracker(dm, every_n_epochs=1)] if method == "cox" else []
    t0 = time.time()
    res = train(cfg, dataset=dm.dataset, callbacks=trackers)
    out = {"label": label, "method": method, "overrides": extra, "scenario": scenario, "seed": seed,
           "seconds": time.time() - t0, **evaluate_oom(res.method, res.datamodule)}
    if trackers:
        out["history"] = trackers[0].history
        out["selection"] = res.method.history
    return out


def main_run(args) -> None:
    torch.set_num_threads(1)
    if args.grid == "side" and args.scenario != "semi":
        raise SystemExit("--grid side is a semi-supervised side study (use --scenario semi)")
    grid = SEMI_SIDE if args.grid == "side" else SEMI if args.scenario == "semi" else UNSUP
    if args.only:
        grid = [g for g in grid if g[0] in args.only]
    results = []
    out = Path(args.out)
    if out.exists() and args.resume:
        results = json.loads(out.read_text())
    done = {(r["label"], r["seed"]) for r in results}
    for seed in args.seeds:
        for label, method, extra in grid:
            if (label, seed) in done:
                continue
            r = run_one(label, method, extra, args.scenario, seed, args)
            results.append(r)
            print(f"{args.scenario:5s} s{seed} {label:28s} acc={r['accuracy']:.3f} "
                  f"R@1={r.get('R@1/oom->im', float('nan')):.3f} ({r['seconds']:.0f}s)", flush=True)
            out.write_text(json.dumps(results, indent=1, default=float))


def _ms(v: list[float]) -> str:
    v = [x for x in v if not (isinstance(x, float) and math.isnan(x))]
    if not v:
        return "–"
    return f"{100 * np.mean(v):.1f} ± {100 * np.std(v):.1f}"


def report(paths: list[str]) -> str:
    lines = []
    for p in paths:
        res = json.loads(Path(p).read_text())
        if not res:
            continue
        scen = res[0]["scenario"]
        labels = list(dict.fromkeys(r["label"] for r in res))
        seeds = sorted({r["seed"] for r in res})
        lines += [f"### {scen}, seeds {seeds} (mean ± std over seeds, %)", "",
                  "| method | OOM accuracy | R@1 OOM→IM | R@5 OOM→IM | R@1 IM→OOM | R@5 IM→OOM | per-seed accuracy |",
                  "|---|---|---|---|---|---|---|"]
        for lab in labels:
            rs = [r for r in res if r["label"] == lab]
            acc = [r["accuracy"] for r in rs]
            lines.append(f"| {lab} | {_ms(acc)} | {_ms([r.get('R@1/oom->im', float('nan')) for r in rs])} | "
                         f"{_ms([r.get('R@5/oom->im', float('nan')) for r in rs])} | "
                         f"{_ms([r.get('R@1/im->oom', float('nan')) for r in rs])} | "
                         f"{_ms([r.get('R@5/im->oom', float('nan')) for r in rs])} | "
                         f"{', '.join(f'{100 * a:.1f}' for a in acc)} |")
        gallery = res[0].get("gallery_size")
        lines += ["", f"Retrieval gallery: {int(gallery) if gallery else '?'} paired test rows (chance R@1 = "
                  f"{100 / gallery:.2f}%, R@5 = {500 / gallery:.2f}%)." if gallery else "", ""]
        cox = [r for r in res if r.get("history")]
        if cox:
            lines += ["Agreement (A) / disagreement (D) accuracy of h^O on the OOM test set, D from the optimal heads "
                      "h_k^* (Fig. 6); MMD² between IM mappings and OOM features (Fig. 5); first epoch → end of "
                      "the first phase → last epoch:", "",
                      "| run | phase end epoch | acc A / D (phase end) | gap | acc A / D (last) | gap | |D| frac (last) | "
                      "MMD² im1 (epoch 1 → phase end → last) | h_k^* acc (last) |", "|---|---|---|---|---|---|---|---|---|"]
            for lab in labels:
                for r in [x for x in cox if x["label"] == lab]:
                    h = r["history"]
                    first_phase = h[0].get("phase")
                    k = max(i for i, x in enumerate(h) if x.get("phase") == first_phase)
                    pe, last = h[k], h[-1]
                    mm = [key for key in last if key.startswith("mmd/")]
                    hs = [key for key in last if key.startswith("hstar_acc/")]
                    g1 = pe["acc_agree"] - pe["acc_disagree"]
                    g2 = last["acc_agree"] - last["acc_disagree"]
                    lines.append(
                        f"| {lab} s{r['seed']} | {int(pe['epoch'])} | {100 * pe['acc_agree']:.1f} / "
                        f"{100 * pe['acc_disagree']:.1f} | {100 * g1:.1f} | {100 * last['acc_agree']:.1f} / "
                        f"{100 * last['acc_disagree']:.1f} | {100 * g2:.1f} | {last['frac_disagree']:.3f} | "
                        f"{h[0][mm[0]]:.4f} → {pe[mm[0]]:.4f} → {last[mm[0]]:.4f} | "
                        f"{', '.join(f'{100 * last[x]:.1f}' for x in hs)} |")
            lines.append("")
            ent = [r for r in cox if "entropy_disagree" in r["history"][-1]]
            if ent:
                lines += ["Evaluation-only diagnostics (never in a loss): mean entropy (nats; uniform = "
                          f"{math.log(10):.2f} for 10 classes) of h^O's posterior on the test A / D sets, and the "
                          "accuracy of the epoch's anchor pseudo-labels (semi: agreement pseudo-labels; unsup: "
                          "Eq. 14 anchors in the warm-up, emergent anchors after) against the hidden OOM labels; "
                          "end of the first phase → last epoch:", "",
                          "| run | entropy A (phase end → last) | entropy D (phase end → last) | "
                          "anchor acc (epoch 1 → phase end → last) |", "|---|---|---|---|"]
                for r in ent:
                    h = r["history"]
                    k = max(i for i, x in enumerate(h) if x.get("phase") == h[0].get("phase"))
                    pe, last = h[k], h[-1]
                    aa = [x.get("anchor_acc", float("nan")) for x in (h[0], pe, last)]
                    lines.append(f"| {r['label']} s{r['seed']} | {pe['entropy_agree']:.2f} → {last['entropy_agree']:.2f}"
                                 f" | {pe['entropy_disagree']:.2f} → {last['entropy_disagree']:.2f} | "
                                 f"{' → '.join(f'{100 * a:.1f}' for a in aa)} |")
                lines.append("")
    return "\n".join(lines)


def plot_curves(paths: list[str], out: str) -> None:
    """Fig. 5 / Fig. 6 over training, per epoch from the tracker history: OOM test accuracy on the agreement and the
    disagreement set (D from the optimal heads h_k^*) and the MMD² between the mapped IM features and the OOM
    features, for every method of the files that has them; one thin line per seed, the mean bold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    records = [r for path in paths for r in json.loads(Path(path).read_text()) if r.get("history")]
    groups: dict[tuple[str, str], list[dict]] = {}
    seen = set()
    for r in records:
        key = (r["scenario"], r["label"], r["seed"])  # a reference run repeated in a second file counts once
        if key in seen:
            continue
        seen.add(key)
        if any(np.isfinite(h.get("acc_disagree", np.nan)) for h in r["history"]):
            groups.setdefault((r["scenario"], r["label"]), []).append(r)
    keys = sorted(groups)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for n, key in enumerate(keys):
        col = colors[n % len(colors)]
        for ax, field, style in ((axes[0], "acc_agree", "-"), (axes[1], "acc_disagree", "-"), (axes[2], "mmd/im1", "-")):
            curves = []
            for r in groups[key]:
                ep = [h["epoch"] for h in r["history"]]
                v = [h.get(field, np.nan) for h in r["history"]]
                curves.append(v)
                ax.plot(ep, v, style, color=col, lw=0.6, alpha=0.4)
            width = min(len(c) for c in curves)
            mean = np.nanmean(np.array([c[:width] for c in curves], float), axis=0)
            ax.plot(ep[:width], mean, style, color=col, lw=2, label=f"{key[0]}: {key[1]} (n={len(curves)})")
    for ax, title in zip(axes, ("accuracy on the agreement set A", "accuracy on the disagreement set D",
                                "MMD² (mapped IM features of im1 vs OOM features)")):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch")
    axes[0].set_ylabel("OOM test accuracy")
    axes[2].set_yscale("log")
    axes[1].legend(fontsize=7, loc="best")
    fig.suptitle("COX over training (Fig. 5 / Fig. 6): thin = one seed, bold = mean over seeds")
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    print(f"wrote {out}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenario", choices=["semi", "unsup"], default="semi")
    ap.add_argument("--data", choices=["cox_sim", "cox_mfeat"], default="cox_sim")
    ap.add_argument("--oom-view", dest="oom_view", default="mor")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--grid", choices=["main", "side"], default="main",
                    help="main = the study grid; side = the semi-supervised KL side study (SEMI_SIDE)")
    ap.add_argument("--only", nargs="*", default=None, help="labels of the grid to run")
    ap.add_argument("--out", default="cox_study.json")
    ap.add_argument("--run-dir", dest="run_dir", default="/tmp/cox_study_runs")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--report", nargs="*", default=None, help="print Markdown tables of these result files")
    ap.add_argument("--plot", default=None, help="with --report: also write the per-epoch curves (Fig. 5/6) here")
    args = ap.parse_args(argv)
    if args.report is not None:
        print(report(args.report))
        if args.plot:
            plot_curves(args.report, args.plot)
        return 0
    main_run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
