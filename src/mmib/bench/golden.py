"""Golden values: a few small, deterministic training runs whose final metrics are kept in ``tests/golden/*.json``, so
that a change of behaviour — a default, a loss weight, the standardization — fails a test instead of drifting a
committed result silently.

One configuration per method family (alignment, fusion / information bottleneck, decomposition, out-of-modality),
each on a small synthetic data set, trained for a fixed number of steps in float64 on one thread; its metrics are the
final logged training and validation quantities (``trainer.callback_metrics``: the loss and every logged term).
A stored value matches when ``|now - stored| <= atol + rtol * |stored|`` (:data:`RTOL`, :data:`ATOL`): far above the
last-bit differences between machines and BLAS builds in float64, far below what any change of behaviour moves.

Regenerate after an intended change of behaviour (and say in the commit which values changed and why)::

    .venv/bin/python -m mmib.bench.golden --regenerate            # every configuration
    .venv/bin/python -m mmib.bench.golden --regenerate comm-rus    # some
    .venv/bin/python -m mmib.bench.golden                          # compare only (what the tests do)
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

RTOL, ATOL = 1e-5, 1e-7
DEFAULT_DIR = Path("tests") / "golden"

#: name → Hydra overrides (every one: float64, fixed steps, no checkpoints, no progress bar)
CONFIGS: dict[str, list[str]] = {
    # alignment: pairwise InfoNCE and its one-vs-all IB variant on the 3-modality alignment generator
    "clip-sim_align": ["method=clip", "data=sim_align", "data.n_samples=600", "method.representation_dim=16",
                       "method.embed_dim=8"],
    "ova_ib-sim_align": ["method=ova_ib", "data=sim_align", "data.n_samples=600", "method.representation_dim=16",
                         "method.embed_dim=8"],
    # fusion / information bottleneck: OMIB on SIM-I (small blocks)
    "omib-simI": ["method=omib", "data=omib_sim", "data.n_samples=600", "data.d0=20", "data.d0_superfluous=20",
                  "data.d11=30", "data.d21=10", "data.d12=20", "data.d22=20", "method.warmup_epochs=1",
                  "method.mine.steps=20", "method.mine.batch_size=64"],
    # decomposition: CoMM on the R/U/S generator (synergy label)
    "comm-rus": ["method=comm", "data=rus_sim", "data.n_samples=600"],
    # out-of-modality: COX on its simulated semi-supervised setting
    # (float32: COX fits its IM heads on float32 feature caches)
    "cox-sim": ["method=cox", "data=cox_sim", "data.n_im=300", "data.n_oom=300", "data.n_val=100",
                "data.n_test=100", "trainer.precision=32-true"],
}
#: per configuration: (rtol, atol) where float64 is not possible
TOLERANCE: dict[str, tuple[float, float]] = {"cox-sim": (1e-3, 1e-5)}
COMMON = ["trainer.max_epochs=2", "+trainer.max_steps=12", "trainer.deterministic=true",
          "trainer.enable_progress_bar=false", "trainer.log_every_n_steps=1", "data.batch_size=64", "seed=0",
          "encoder.vector.hidden=[32]"]


def golden_overrides(name: str, extra: Sequence[str] = ()) -> list[str]:
    if name not in CONFIGS:
        from mmib.errors import UnknownNameError

        raise UnknownNameError("golden configuration", name, list(CONFIGS))
    precision = [] if any(o.startswith("trainer.precision=") for o in CONFIGS[name]) else ["trainer.precision=64-true"]
    return [*CONFIGS[name], *precision, *COMMON, *extra]


def run_golden(name: str, extra: Sequence[str] = (), run_dir: str | Path | None = None) -> dict[str, float]:
    """Train one configuration deterministically (one thread, float64) and return its final metrics."""
    import torch

    from mmib.config import compose_config
    from mmib.engine import train

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            where = str(run_dir) if run_dir is not None else tmp
            cfg = compose_config([*golden_overrides(name, extra), f"run_dir={where}", f"name=golden-{name}"])
            res = train(cfg)
            return {k: float(v) for k, v in sorted(res.metrics.items()) if not k.endswith("_step")}
    finally:
        torch.set_num_threads(threads)


def compare(got: Mapping[str, float], stored: Mapping[str, float], rtol: float = RTOL,
            atol: float = ATOL) -> list[str]:
    """Differences beyond the tolerance, one line each (empty: a match). A metric missing or new is a difference."""
    out = []
    for k in sorted(set(got) | set(stored)):
        if k not in stored:
            out.append(f"{k}: new metric {got[k]!r} (not in the stored values)")
        elif k not in got:
            out.append(f"{k}: stored {stored[k]!r}, not logged any more")
        else:
            a, b = float(got[k]), float(stored[k])
            if math.isnan(a) and math.isnan(b):
                continue
            if not abs(a - b) <= atol + rtol * abs(b):
                out.append(f"{k}: {a!r} now, stored {b!r} (rel. diff {abs(a - b) / max(abs(b), 1e-300):.2e})")
    return out


def load_stored(name: str, directory: str | Path = DEFAULT_DIR) -> dict[str, Any]:
    p = Path(directory) / f"{name}.json"
    if not p.is_file():
        from mmib.errors import MMIBError

        raise MMIBError(f"no stored golden values '{p}': python -m mmib.bench.golden --regenerate {name}")
    return json.loads(p.read_text())


def regenerate(names: Sequence[str] | None = None, directory: str | Path = DEFAULT_DIR) -> dict[str, dict]:
    from mmib.runs import git_commit, package_versions
    from mmib.utils.io import atomic_write_json

    out = {}
    for name in names or list(CONFIGS):
        metrics = run_golden(name)
        rtol, atol = TOLERANCE.get(name, (RTOL, ATOL))
        rec = {"name": name, "overrides": golden_overrides(name), "rtol": rtol, "atol": atol, "metrics": metrics,
               "git_commit": git_commit(), "versions": {k: v for k, v in package_versions().items()
                                                        if k in ("mmib", "torch", "lightning", "numpy")},
               "regenerate": f"python -m mmib.bench.golden --regenerate {name}"}
        Path(directory).mkdir(parents=True, exist_ok=True)
        atomic_write_json(Path(directory) / f"{name}.json", rec)
        out[name] = rec
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mmib.bench.golden", description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help=f"configurations (default: all of {', '.join(CONFIGS)})")
    ap.add_argument("--regenerate", action="store_true", help="run and store the values (after an intended change)")
    ap.add_argument("--dir", default=str(DEFAULT_DIR), help="where the values are kept (default: tests/golden)")
    args = ap.parse_args(argv)
    if args.regenerate:
        for name, rec in regenerate(args.names or None, args.dir).items():
            print(f"{name}: {len(rec['metrics'])} values stored in {Path(args.dir) / (name + '.json')}")
        return 0
    bad = 0
    for name in args.names or list(CONFIGS):
        stored = load_stored(name, args.dir)
        diff = compare(run_golden(name), stored["metrics"], stored["rtol"], stored["atol"])
        print(f"{name}: {'ok' if not diff else 'DIFFERS'}")
        for line in diff:
            print(f"  {line}")
        bad += bool(diff)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
