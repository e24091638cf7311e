"""Why Symile retrieves near chance on the digits: the geometry of its embeddings (docs/results/alignment.md).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/symile_geometry.py [--epochs 10] [--seed 0]

Trains Symile (default: L2-normalized, O(N) negatives; also without normalization and with all N² negatives) and
pairwise CLIP on the 3-view UCI digits (views 0, 2, 5), then reports on the test split, per run:

- the participation ratio of each modality's embedding, (Σ z_d²)² / Σ z_d⁴ — the effective number of coordinates
  a sample uses (d = 256; a vector spread evenly over all coordinates has 256, a one-hot vector 1);
- instance retrieval of modality 1 from the other two with the objective's own scorer (R@1; chance 1/N);
- whether the top-1 candidate has the query's class (what a code that identifies only the class reaches; the
  instance R@1 of such a code is about 1 / (test rows per class)).
"""

from __future__ import annotations

import argparse

import torch

from mmib.config import compose_config
from mmib.engine import train

RUNS = {
    "symile (L2-normalized, O(N) negatives)": ["method=symile"],
    "symile, no normalization": ["method=symile", "method.objective.normalize=false"],
    "symile, N^2 negatives": ["method=symile", "method.objective.negatives=n_squared"],
    "clip": ["method=clip"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run-dir", default="runs/symile_geometry")
    a = ap.parse_args()
    torch.set_num_threads(1)
    print("| run | participation ratio (x1, x2, x3) | R@1 x1 from (x2, x3) | top-1 of the same class | 1 / rows per class |")
    print("|---|---|---|---|---|")
    for i, (label, over) in enumerate(RUNS.items()):
        name = f"{over[0].split('=')[1]}-{i}"
        cfg = compose_config([*over, "data=mfeat", "data.views=[0,2,5]", f"trainer.max_epochs={a.epochs}",
                              f"seed={a.seed}", "trainer.enable_progress_bar=false", f"run_dir={a.run_dir}",
                              f"name={name}"])
        res = train(cfg)
        m, dm = res.method, res.datamodule
        m.eval()
        b = dm.split_batch("test")
        y = b["y"]
        with torch.no_grad():
            e = m.embed(b, space="embedding")
            zs = list(e.values())
            pr = [float(((v ** 2).sum(1) ** 2 / (v ** 4).sum(1)).mean()) for v in zs]
            s = m.objective.score([zs[1], zs[2]], zs[0]) if hasattr(m.objective, "score") else None
        top = s.argmax(1)
        r1 = float((top == torch.arange(len(y))).float().mean())
        same = float((y[top] == y).float().mean())
        per_class = float(len(y)) / len(torch.unique(y))
        print(f"| {label} | {', '.join(f'{p:.1f}' for p in pr)} | {100 * r1:.1f} % | {100 * same:.1f} % | "
              f"{100 / per_class:.1f} % |", flush=True)


if __name__ == "__main__":
    main()
