"""``mmib eval``: evaluate a trained run."""

from __future__ import annotations

import argparse

from mmib.errors import MMIBError


def _cmd_eval(args: argparse.Namespace) -> int:
    from mmib.engine import load_run
    from mmib.eval.probe import ProbeConfig, train_probe
    from mmib.eval.representations import extract
    from mmib.utils.io import atomic_write_json

    cfg, method, dm = load_run(args.run)
    mods = args.modalities.split(",") if args.modalities else None
    if dm.spec.task == "none":
        raise MMIBError(f"data set '{dm.spec.name}' has no labels: a probe needs a classification or regression task")
    out = {}
    for label, m, rep in (("raw", None, "raw"), (method.name, method, args.representation)):
        xtr, ytr = extract(m, dm, "train", mods, rep)
        xva, yva = extract(m, dm, "val", mods, rep)
        xte, yte = extract(m, dm, "test", mods, rep)
        out[label] = train_probe(xtr, ytr, xva, yva, xte, yte, dm.spec.task, dm.spec.n_classes,
                                 ProbeConfig(kind=args.probe, seed=args.seed))
    from pathlib import Path

    run = Path(args.run) if not str(args.run).endswith(".ckpt") else Path(args.run).parent.parent
    atomic_write_json(run / "eval_probe.json", {"probe": args.probe, "modalities": mods,
                                                 "representation": args.representation, "results": out})
    metric_keys = [k for k in next(iter(out.values())) if k not in ("val_loss", "epochs")]
    print("representation  " + "  ".join(f"{k:>17}" for k in metric_keys))
    for label, met in out.items():
        print(f"{label:<16}" + "  ".join(f"{met[k]:>17.4f}" for k in metric_keys))
    return 0



def register_cli(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("eval", help="evaluate a trained run with a probe on frozen representations")
    e.add_argument("run", help="run folder (runs/<name>) or a .ckpt file")
    e.add_argument("--probe", default="linear", choices=["linear", "mlp"])
    e.add_argument("--modalities", default=None, help="comma-separated subset (default: all)")
    e.add_argument("--representation", default="concat", help="concat | fused | component:<name>")
    e.add_argument("--seed", type=int, default=0)
    e.set_defaults(func=_cmd_eval)

