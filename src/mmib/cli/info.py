"""``mmib info validate``: the estimator study of :mod:`mmib.info.validate` (table as Markdown + JSON, PNG plot)."""

from __future__ import annotations

import argparse


def _csv(kind):
    def parse(text: str):
        try:
            return tuple(kind(v) for v in text.split(",") if v.strip())
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {kind.__name__}, got {text!r}") from e

    return parse


def _cmd_validate(args: argparse.Namespace) -> int:
    import torch

    from mmib.info.validate import StudyConfig, run_gaussian_study
    from mmib.info.validate_report import claims, write_outputs
    from mmib.utils.progress import ProgressReporter

    overrides = {k: v for k, v in {
        "dims": args.dims, "mis": args.mis, "steps_per_level": args.steps, "first_level_steps": args.first_steps,
        "estimators": args.estimators, "critic": args.critic, "hidden_dim": args.hidden_dim, "lr": args.lr,
        "seed": args.seed, "cond_steps": args.cond_steps, "club_q": args.club_q, "eval_batches": args.eval_batches,
        "nongaussian_estimators": args.nongaussian, "train_batch_size": args.train_batch, "ema": args.ema,
        "standardize": False if args.no_standardize else None,
    }.items() if v is not None}
    if args.input_map is not None:  # "none" is an explicit choice, not "the default"
        overrides["input_map"] = None if args.input_map == "none" else args.input_map
    cfg = StudyConfig.quick(**overrides) if args.quick else StudyConfig(**overrides)
    if args.threads:
        torch.set_num_threads(args.threads)
    with ProgressReporter(enabled=not args.no_progress) as rep:
        res = run_gaussian_study(cfg, reporter=rep)
    paths = write_outputs(res, args.out, stem=args.stem)
    for line in claims(res):
        print(line)
    print(f"table: {paths['md']}  data: {paths['json']}  plot: {paths['png']}  ({res.seconds:.0f} s)")
    return 0


def register_cli(subparsers) -> None:
    """Add ``info`` with the ``validate`` sub-command to the ``mmib`` command's sub-parsers."""
    info = subparsers.add_parser("info", help="information measurement: estimator validation")
    isub = info.add_subparsers(dest="info_command", required=True, parser_class=type(info))
    v = isub.add_parser("validate", help="MI estimators vs Gaussian ground truth (FactorCL Fig. 3 protocol)",
                        description="Train every estimator on correlated Gaussians with known MI and write a table "
                                    "(<stem>.md, <stem>.json) and a plot (<stem>.png).")
    v.add_argument("--out", default="runs/info-validate", help="output folder (default: runs/info-validate)")
    v.add_argument("--stem", default="estimators", help="file name stem of the outputs (default: estimators)")
    v.add_argument("--quick", action="store_true", help="small study: d 20,50; MI 2,6,10; 150 steps per level")
    v.add_argument("--steps", type=int, default=None, help="Adam steps per true-MI level (default 400)")
    v.add_argument("--first-steps", type=int, default=None,
                   help="Adam steps of the first level, the cold start (default: estimate_mi's steps, 1000; "
                        "at least --steps)")
    v.add_argument("--estimators", type=_csv(str), default=None,
                   help="comma-separated subset of infonce,nwj,mine,club,club_linear,nce_club,nce_club_offdiag")
    v.add_argument("--dims", type=_csv(int), default=None, help="comma-separated dimensions (default 20,50,100,200)")
    v.add_argument("--mis", type=_csv(float), default=None, help="comma-separated true MIs in nats (default 2..10)")
    v.add_argument("--critic", choices=("concat", "separable", "bilinear"), default=None,
                   help="critic of InfoNCE / NWJ / MINE / NCE-CLUB (default: estimate_mi's for each: separable; "
                        "NWJ and MINE concat)")
    v.add_argument("--hidden-dim", type=int, default=None,
                   help="critic and CLUB-q hidden width (default: estimate_mi's, 512)")
    v.add_argument("--lr", type=float, default=None,
                   help="Adam learning rate of every estimator (default: estimate_mi's default_lr: 1e-3; CLUB with "
                        "its MLP q 5e-4)")
    v.add_argument("--club-q", choices=("mlp", "linear"), default=None, help="CLUB's q for the `club` rows "
                   "(default: estimate_mi's, mlp; `club_linear` always uses the linear-Gaussian q)")
    v.add_argument("--train-batch", type=int, default=None,
                   help="rows per training step (default: estimate_mi's, 512; estimates are evaluated at batch 64)")
    v.add_argument("--ema", type=float, default=None,
                   help="decay of the weight average the estimates use (default: estimate_mi's, 0.99; 0: none)")
    v.add_argument("--no-standardize", action="store_true",
                   help="do not standardize each coordinate of x and y (default: standardized, as estimate_mi)")
    v.add_argument("--input-map", choices=("none", "monotone"), default=None,
                   help="a learned increasing map of every coordinate before the critics and CLUB's q "
                        "(default: estimate_mi's)")
    v.add_argument("--eval-batches", type=int, default=None,
                   help="held-out batches per level for the estimate and its s.e.m. (default 32)")
    v.add_argument("--nongaussian", type=_csv(str), default=None,
                   help="estimators also run on the cubic (x³, y³) staircase (default infonce,club,club_linear,"
                        "nce_club; pass '' for none)")
    v.add_argument("--cond-steps", type=int, default=None, help="training steps of the conditional check")
    v.add_argument("--seed", type=int, default=None)
    v.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    v.add_argument("--no-progress", action="store_true")
    v.set_defaults(func=_cmd_validate)
