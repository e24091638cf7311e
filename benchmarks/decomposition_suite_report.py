"""Markdown tables of the `decomposition` bench suite for docs/results/decomposition.md.

    .venv/bin/mmib bench decomposition [--data rus_sim,factorcl_sim]     # runs (resumable)
    .venv/bin/python benchmarks/decomposition_suite_report.py [docs/results/decomposition/results.json]

Prints, per data set of the suite that has finished runs: the CE-trained linear probe of the task label (balanced
accuracy, concatenated and fused representations) and the representation × ground-truth latent matrix of the
`info_probe` protocol (linear probes; balanced accuracy for discrete latents, R² for continuous ones) for the
concatenated representation (and CoMM's fused Z), mean ± sample std over seeds.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path


def _fmt(a: dict | None, scale: float) -> str:
    if not a:
        return "—"
    if math.isnan(a["mean"]):
        return "nan"
    if a["n"] > 1:
        return f"{scale * a['mean']:.1f} ± {scale * a['std']:.1f}"
    return f"{scale * a['mean']:.1f} (n=1)"


def main(path: str = "docs/results/decomposition/results.json") -> None:
    from mmib.bench.results import unpack_results

    res = unpack_results(json.loads(Path(path).read_text()))  # the kept results file or a suite folder's
    agg = {(a["variant"], a["data"], a["protocol"], a["row"], a["metric"]): a for a in res["aggregate"]}
    variants = [m["name"] for m in res["suite"]["methods"]]
    done = sorted({(r["data"]) for r in res["runs"] if r["complete"] or r.get("earlier_config")}, key=[d["name"] for d in res["suite"]["data"]].index)
    n_done = sum(r["complete"] for r in res["runs"])
    print(f"Suite `decomposition`: {n_done}/{len(res['runs'])} runs complete (commit {res.get('git_commit')}).")
    for data in done:
        latents = []
        for (_v, d, p, row, metric) in agg:
            if d == data and p == "info_probe" and row.startswith("concat/") and metric == "score":
                lat = row.split("/", 1)[1]
                if lat not in latents:
                    latents.append(lat)
        print(f"\n### {data}\n")
        print("Task label, CE-trained linear probe, balanced accuracy (%); then the linear-probe score of each ground-truth "
              "latent from the concatenated representation (balanced accuracy % for discrete latents, R² × 100 for "
              "continuous ones; mean ± std over seeds).\n")
        head = ["method", "label (concat)", "label (fused)", *[f"{lat} (concat)" for lat in latents]]
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        rows = [("raw", "raw/concat/linear", None, "raw")] + [(v, "method/concat/linear", "method/fused/linear", "concat")
                                                               for v in variants]
        for v, lab_c, lab_f, rep in rows:
            src = variants[0] if v == "raw" else v
            cells = [_fmt(agg.get((src, data, "probe", lab_c, "balanced_accuracy")), 100)]
            cells.append(_fmt(agg.get((src, data, "probe", lab_f, "balanced_accuracy")), 100) if lab_f else "—")
            for lat in latents:
                cells.append(_fmt(agg.get((src, data, "info_probe", f"{rep}/{lat}", "score")), 100))
            if all(c == "—" for c in cells):
                continue
            print(f"| {v} | " + " | ".join(cells) + " |")
        fused = [(v, [agg.get((v, data, "info_probe", f"fused/{lat}", "score")) for lat in latents]) for v in variants]
        fused = [(v, cells) for v, cells in fused if any(cells)]
        if fused:
            print("\nFused representation (methods that have one), the same latents:\n")
            print("| method | " + " | ".join(latents) + " |")
            print("|" + "---|" * (len(latents) + 1))
            for v, cells in fused:
                print(f"| {v} | " + " | ".join(_fmt(c, 100) for c in cells) + " |")


if __name__ == "__main__":
    main(*sys.argv[1:])
