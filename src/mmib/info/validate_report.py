"""Reporting of the estimator validation study (``mmib info validate``): the checks, the Markdown page, the plot
and the JSON round trip. The study itself is :mod:`mmib.info.validate`."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from mmib.info.critics import MONOTONE_COMPONENTS
from mmib.info.estimate import DEFAULT_EMBED_DIM, DEFAULT_STEPS
from mmib.info.estimators import CLUBEstimator, MIEstimator
from mmib.info.gaussian import gaussian_club_value
from mmib.info.validate import (
    DIAG_SAMPLES,
    MAX_DEAD,
    ORACLE_FRACTION,
    STUDY_ESTIMATORS,
    StudyConfig,
    StudyResult,
    model_critic,
    model_lr,
    train_batch,
)
from mmib.utils.io import atomic_write_text, save_figure_png


def _check_table(res: StudyResult, summary: dict, label: str) -> list[str]:
    """The issue's checks on one staircase (``summary``): upper bounds >= truth - 2 s.e.m., lower bounds <=
    truth + 2 s.e.m., InfoNCE >= ORACLE_FRACTION of its oracle row, dead units <= MAX_DEAD."""
    lines = []
    for e in STUDY_ESTIMATORS:
        if e not in summary:
            continue
        kind = STUDY_ESTIMATORS[e][1]
        cells = [(int(d), lv) for d, levels in summary[e].items() for lv in levels]
        if kind == "upper":
            bad = [(d, lv) for d, lv in cells if lv["mean"] < lv["true"] - 2 * lv["sem"]]
            verdict = "at or above truth - 2 s.e.m. in"
        else:
            bad = [(d, lv) for d, lv in cells if lv["mean"] > lv["true"] + 2 * lv["sem"]]
            verdict = "at or below truth + 2 s.e.m. in"
        good = len(cells) - len(bad)
        where = ", ".join(f"d={d}/I={lv['true']:g} ({lv['mean']:.2f})" for d, lv in bad)
        lines.append(f"[{label}] {e} ({kind} bound): mean estimate {verdict} {good}/{len(cells)} cells"
                     + (f"; not in: {where}." if bad else "."))
        if e == "infonce" and "infonce" in res.oracle:
            rows = []
            for d, levels in summary[e].items():
                for lv, orc in zip(levels, res.oracle["infonce"][d], strict=True):
                    if orc["mean"] < res.log_batch:
                        rows.append((int(d), lv, orc))
            short = [(d, lv, o) for d, lv, o in rows if lv["mean"] < ORACLE_FRACTION * o["mean"]]
            where = ", ".join(f"d={d}/I={lv['true']:g} ({lv['mean']:.2f} = {lv['mean'] / o['mean']:.0%} of "
                              f"{o['mean']:.2f})" for d, lv, o in short)
            lines.append(f"[{label}] infonce reaches {ORACLE_FRACTION:.0%} of its oracle row in "
                         f"{len(rows) - len(short)}/{len(rows)} cells where the oracle is below log N"
                         + (f"; not in: {where}." if short else "."))
    for e in STUDY_ESTIMATORS:
        sats = [(int(d), lv) for d, levels in summary.get(e, {}).items() for lv in levels
                if lv.get("saturation") is not None]
        if e in ("club",) and sats:
            hot = [(d, lv) for d, lv in sats if lv["saturation"] > 0.5]
            lines.append(f"[{label}] {e}: q's log-variance saturated (|tanh| > 0.99 on more than half of the held-out "
                         f"outputs) in {len(hot)}/{len(sats)} cells"
                         + ("; there q cannot match the conditional variance and the estimate is inflated, not "
                            "converged." if hot else "."))
    nets = {}
    for e, by_d in summary.items():
        for d, levels in by_d.items():
            model = STUDY_ESTIMATORS[e][0]
            if levels and levels[0]["units"]:
                nets[(model, d)] = max(lv["dead"] for lv in levels)
    if nets:
        worst = max(nets.values())
        bad = [f"{m} d={d} ({v:.0%})" for (m, d), v in nets.items() if v > MAX_DEAD]
        lines.append(f"[{label}] dead ReLU units <= {MAX_DEAD:.0%} in every trained network (largest fraction in any "
                     f"ReLU layer at any level: {worst:.1%}): "
                     f"{'holds' if not bad else 'DOES NOT HOLD: ' + ', '.join(bad)}.")
    return lines


def claims(res: StudyResult) -> list[str]:
    """The checks of the issue, computed from the results (each line says holds / does not hold)."""
    lines = []
    s = res.summary
    if "infonce" in s:
        mx = max(lv["max"] for d in s["infonce"].values() for lv in d)
        log_n = res.log_train_batch or res.log_batch
        ok = mx <= log_n + 1e-5
        lines.append(f"InfoNCE <= log N = {log_n:.3f} on every training batch (N = "
                     f"{train_batch(res.config, 'nce')}): {'holds' if ok else 'DOES NOT HOLD'} "
                     f"(largest batch value {mx:.3f}).")
    lines += _check_table(res, res.summary, "Gaussian")
    if res.summary_nongaussian:
        lines += _check_table(res, res.summary_nongaussian, "cubic")
    tol = res.config.cond_rel_tolerance
    for r in res.conditional:
        line = (f"conditional (d={r['dim']}, negatives={r['negatives']}): true CMI {r['true_cmi']:.2f}, "
                f"InfoNCE {r['infonce']:.3f} ± {r['infonce_sem']:.3f}, "
                f"NCE-CLUB {r['nce_club']:.3f} ± {r['nce_club_sem']:.3f} (± = s.e.m.)")
        if r["negatives"] == "same_condition":
            ok = abs(r["infonce"] - r["true_cmi"]) <= tol * r["true_cmi"]
            line += (f"; InfoNCE within {tol:.0%} of the truth: {'holds' if ok else 'DOES NOT HOLD'} "
                     f"(relative error {(r['infonce'] - r['true_cmi']) / r['true_cmi']:+.1%})")
        else:
            line += "; in-batch negatives bound I([X1,C];[X2,C]), not the CMI (no tolerance applies)"
        lines.append(line)
    return lines


def _fmt_sat(v) -> str:
    return "—" if v is None else f"{v:.0%}"


def _tables(res: StudyResult, summary: dict, title: str) -> list[str]:
    cfg = res.config
    out = []
    for d in cfg.dims:
        names = [e for e in STUDY_ESTIMATORS if e in summary and str(d) in summary[e]]
        if not names:
            continue
        out += [f"## {title}, d = {d}", "", "| estimator | " + " | ".join(f"I = {m:g}" for m in cfg.mis)
                + " | dead ReLU units (worst layer, max over levels) | saturation (per level) |",
                "|---|" + "---|" * (len(cfg.mis) + 2)]
        for e in names:
            levels = summary[e][str(d)]
            units = levels[0]["units"]
            dead = f"{max(lv['dead'] for lv in levels):.1%} ({units} units in all)" if units else "— (no ReLU)"
            out.append(f"| {e} ({STUDY_ESTIMATORS[e][1]}) | "
                       + " | ".join(f"{lv['mean']:.2f} ± {lv['sem']:.2f}" for lv in levels)
                       + f" | {dead} | {' / '.join(_fmt_sat(lv['saturation']) for lv in levels)} |")
        for e in names:
            if e in res.oracle and e not in ("club_linear", "nce_club"):
                label = "CLUB / NCE-CLUB" if e == "club" else e
                out.append(f"| *oracle: {label} with the optimal critic* | "
                           + " | ".join(f"*{o['mean']:.2f} ± {o['sem']:.2f}*" for o in res.oracle[e][str(d)])
                           + " | | |")
        out.append("| *closed form of CLUB / NCE-CLUB with the exact p(y\\|x)* | "
                   + " | ".join(f"*{gaussian_club_value(d, float(m)):.2f}*" for m in cfg.mis) + " | | |")
        out.append("")
    return out


_FLAGS = {"dims": "--dims", "mis": "--mis", "steps_per_level": "--steps", "first_level_steps": "--first-steps",
          "estimators": "--estimators",
          "nongaussian_estimators": "--nongaussian", "critic": "--critic", "hidden_dim": "--hidden-dim", "lr": "--lr",
          "train_batch_size": "--train-batch", "ema": "--ema",
          "club_q": "--club-q", "eval_batches": "--eval-batches", "seed": "--seed", "cond_steps": "--cond-steps"}


def command_line(cfg: StudyConfig, out: str = "docs/results") -> str:
    """The ``mmib info validate`` command that reproduces ``cfg`` (options that differ from the defaults)."""
    base = StudyConfig()
    parts = ["mmib info validate"]
    for name, flag in _FLAGS.items():
        v, d = getattr(cfg, name), getattr(base, name)
        if v != d:
            parts.append(f"{flag} {','.join(f'{x:g}' if isinstance(x, float) else str(x) for x in v)}"
                         if isinstance(v, tuple) else f"{flag} {v:g}" if isinstance(v, float) else f"{flag} {v}")
    if cfg.standardize != base.standardize:
        parts.append("--no-standardize")
    if cfg.input_map != base.input_map:
        parts.append(f"--input-map {cfg.input_map or 'none'}")
    return " ".join(parts + [f"--out {out}"])


def _steps_text(cfg: StudyConfig) -> str:
    """The steps per level, as the page states them."""
    first, *rest = cfg.level_steps()
    if not rest or first == cfg.steps_per_level:
        return f"{first} Adam steps per MI value"
    same = "; `estimate_mi`'s default `steps`" if first == DEFAULT_STEPS else ""
    return (f"Adam steps per MI value: {first} at the first level (the cold start: every network, input maps "
            f"included, starts from its initialization{same}), {cfg.steps_per_level} at each later one, which "
            "starts from the previous level's weights")


def _lr_text(cfg: StudyConfig, used: dict | None = None) -> str:
    """The Adam learning rates, as the page states them: one, or the critics' and CLUB's where they differ.
    ``used``: the rates the run recorded (``StudyResult.environment["learning_rates"]``), else those ``cfg`` gives
    with this version's defaults."""
    rates = {m: (used or {}).get(m, model_lr(cfg, m)) for m in ("nce", "club", "club_linear")}
    has_club = "club" in cfg.estimators or "club" in cfg.nongaussian_estimators
    if not has_club or rates["club"] == rates["nce"]:
        return f"Adam lr {rates['nce']:g}"
    return f"Adam lr {rates['nce']:g}, CLUB's `{cfg.club_q}` q {rates['club']:g}"


def markdown_report(res: StudyResult, png_name: str = "estimators.png") -> str:
    cfg = res.config
    out = [
        "# MI estimator validation (Gaussian ground truth)",
        "",
        f"Command: `OMP_NUM_THREADS=1 {command_line(cfg)}`",
        "",
        "Produced by `mmib info validate` (`mmib.info.validate`). FactorCL Fig. 3 protocol (spec A.8.1/D.1.3): "
        f"correlated Gaussians, d ∈ {list(cfg.dims)}, true MI ∈ {[float(m) for m in cfg.mis]} nats, estimates "
        f"evaluated at batch {cfg.batch_size}, one estimator trained online through the staircase, "
        + _steps_text(cfg) + f" ({_lr_text(cfg, res.environment.get('learning_rates'))}; the paper uses 4000) "
        f"on fresh batches of "
        f"{train_batch(cfg, 'nce')} (CLUB: {train_batch(cfg, 'club')}), critic `{model_critic(cfg, 'nce')}` with hidden "
        f"width {cfg.hidden_dim}"
        + (f" (embeddings {DEFAULT_EMBED_DIM}, linear skip)" if model_critic(cfg, "nce") == "separable" else "")
        + (f" (NWJ, MINE: `{model_critic(cfg, 'nwj')}`, trained on batches of {train_batch(cfg, 'nwj')})"
           if model_critic(cfg, "nwj") != model_critic(cfg, "nce") else "")
        + f"; CLUB: Gaussian q = `{cfg.club_q}` (width {cfg.hidden_dim}) and, as `club_linear`, the "
        f"linear-Gaussian q; estimates with the moving average of the weights (decay {cfg.ema:g}); every "
        f"coordinate {'standardized' if cfg.standardize else 'not standardized'} by the statistics of "
        f"{4 * DIAG_SAMPLES} samples of the first level"
        + ("; then a learned increasing map of every coordinate of x and y before the critic and CLUB's q "
           f"(`input_map=\"monotone\"`: `MonotoneMap`, {MONOTONE_COMPONENTS} tanh components per coordinate; its "
           f"steps {MIEstimator.input_map_lr_scale:g}× the critic's, {CLUBEstimator.input_map_lr_scale:g}× in CLUB's q; "
           "CLUB's q then is the flow φ(y) ~ N(μ(x), σ²(x)) with its log-Jacobian)"
           if cfg.input_map == "monotone" else "")
        + f"; seed {cfg.seed}. These are the defaults of `estimate_mi`. "
        f"Entries: mean ± s.e.m. "
        f"over {cfg.eval_batches} held-out batches of {cfg.batch_size} evaluated after each level's training "
        f"(nats). Dead units and saturation on {DIAG_SAMPLES} held-out samples after each level "
        "(`mmib.info.diagnostics`: a ReLU unit is dead if its output is <= 0 on all of them, and the fraction is that "
        "of the estimator's worst ReLU layer; saturation = share of "
        "rows whose softmax puts > 0.99 on the positive, or for CLUB's MLP q the share of |tanh log σ²| > 0.99). "
        f"Run time {res.seconds:.0f} s ({res.environment.get('threads', '?')} torch thread(s), torch "
        f"{res.environment.get('torch', '?')}).",
        "",
        f"![estimates vs truth]({png_name})",
        "",
        "How to read: InfoNCE, NWJ and MINE are lower bounds; InfoNCE cannot exceed log N. The italic *oracle* rows "
        "evaluate each bound with its optimal critic (the pointwise MI log p(y|x)/p(y); CLUB's exact q) on the same "
        "number of held-out batches of the same size: the ceiling of each bound at this batch size. CLUB and "
        "NCE-CLUB are upper bounds when q = p(y|x) (CLUB, Cheng et al. Thm 3.2) or the critic is the optimal "
        "InfoNCE critic (NCE-CLUB, FactorCL Thm 2); both then equal d(e^{2I/d} - 1) (last row), far above the "
        "truth. An upper bound's estimate below the truth means q / the critic has not reached p(y|x) / the "
        "optimum, not a violated theorem. The cubic tables train the same estimators on (x³, y³): the MI and the "
        "oracle rows are unchanged. Why these defaults, and what other critics and training batches measured: "
        "[`docs/guide/information.md`](../guide/information.md#defaults-and-why-diagnosed-before-tuning).",
        "",
    ]
    out += _tables(res, res.summary, "Gaussian")
    if res.summary_nongaussian:
        out += _tables(res, res.summary_nongaussian, "Cubic (x³, y³)")
    if res.conditional:
        out += ["## Conditional estimators (spec D.1.4 generator)", "",
                f"d = {cfg.cond_dim}, {cfg.cond_steps} training steps, "
                f"estimate = mean over {cfg.cond_eval_batches} fresh batches (± s.e.m.). `same_condition`: every "
                "batch shares one c (negatives from p(x2|c), FactorCL Eq. 13); `batch`: 64 different c per "
                "batch, in-batch negatives (FactorCL's code), which bounds I([X1,C];[X2,C]) instead. Tolerance, fixed "
                f"in the configuration (`cond_rel_tolerance`): with `same_condition` negatives the conditional "
                f"InfoNCE recovers the CMI when it is within {cfg.cond_rel_tolerance:.0%} of the true value (see "
                "Checks).", "",
                "| true I(X1;X2\\|C) | negatives | conditional InfoNCE | conditional NCE-CLUB |", "|---|---|---|---|"]
        for r in res.conditional:
            out.append(f"| {r['true_cmi']:g} | {r['negatives']} | {r['infonce']:.3f} ± {r['infonce_sem']:.3f} | "
                       f"{r['nce_club']:.3f} ± {r['nce_club_sem']:.3f} |")
        out.append("")
    out += ["## Checks (computed from the numbers above)", ""] + [f"- {c}" for c in claims(res)] + [""]
    return "\n".join(out)


def truth_staircase(cfg: StudyConfig) -> np.ndarray:
    """The true MI at every training step of the online staircase (the plot's "true MI" line): each level's value
    for that level's number of steps (``cfg.level_steps()``: the first level may be longer)."""
    return np.repeat(np.asarray(cfg.mis, dtype=float), cfg.level_steps())


def plot(res: StudyResult, path: Path, smooth: int = 25) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = res.config
    nd = len(cfg.dims)
    fig, axes = plt.subplots(2, nd, figsize=(4.2 * nd, 7.5), squeeze=False)
    colors = dict(zip(STUDY_ESTIMATORS, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    truth = truth_staircase(cfg)
    kernel = np.ones(smooth) / smooth
    for j, d in enumerate(cfg.dims):
        ax = axes[0, j]
        for e in cfg.estimators:
            tr = np.asarray(res.traces[e][str(d)])
            if len(tr) != len(truth):
                raise ValueError(f"estimator '{e}', d = {d}: its training trace has {len(tr)} steps, the staircase "
                                 f"of the configuration {len(truth)} (level steps {list(cfg.level_steps())}); the "
                                 f"result and its config do not match")
            ax.plot(tr, color=colors[e], alpha=0.15, lw=0.5)
            if len(tr) >= smooth:
                ax.plot(np.arange(smooth - 1, len(tr)), np.convolve(tr, kernel, "valid"), color=colors[e], lw=1.2,
                        label=e)
        ax.plot(truth, "k", lw=1.5, label="true MI")
        ax.axhline(res.log_train_batch or res.log_batch, color="gray", ls="--", lw=1,
                   label=f"log {train_batch(cfg, 'nce')} (training batch)")
        top = max(2 * max(cfg.mis) + 2, 1.1 * max(lv["mean"] + 2 * lv["sem"] for e in cfg.estimators
                                                   for lv in res.summary[e][str(d)]))
        ax.set_ylim(-1, top)
        ax.set_title(f"d = {d}")
        ax.set_xlabel("training step")
        if j == 0:
            ax.set_ylabel("estimate (nats)")
            ax.legend(fontsize=7, loc="upper left")
        ax = axes[1, j]
        for e in cfg.estimators:
            lv = res.summary[e][str(d)]
            ax.errorbar([v["true"] for v in lv], [v["mean"] for v in lv], yerr=[2 * v["sem"] for v in lv],
                        color=colors[e], marker="o", ms=3, capsize=2, label=e)
        m = max(cfg.mis)
        ax.plot([0, m], [0, m], "k", lw=1, label="truth")
        ax.plot(cfg.mis, [gaussian_club_value(d, float(v)) for v in cfg.mis], "k:", lw=1,
                label="CLUB with exact p(y|x)")
        if "infonce" in res.oracle:
            ax.plot(cfg.mis, [o["mean"] for o in res.oracle["infonce"][str(d)]], color=colors["infonce"], ls=":",
                    lw=1, label="InfoNCE oracle")
        ax.axhline(res.log_batch, color="gray", ls="--", lw=1, label=f"log {cfg.batch_size}")
        ax.set_xlabel("true MI (nats)")
        ax.set_ylim(-1, top)
        if j == 0:
            ax.set_ylabel("mean estimate (nats)")
            ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("MI estimators on correlated Gaussians (top: online traces, smoothed; bottom: estimate vs truth)")
    fig.tight_layout()
    try:
        save_figure_png(fig, path, dpi=80)  # atomic: a crash leaves no half-written plot
    finally:
        plt.close(fig)


def load_result(path: str | Path) -> StudyResult:
    """A :class:`StudyResult` from the JSON that :func:`write_outputs` wrote (to re-render the table and plot)."""
    payload = json.loads(Path(path).read_text())
    payload.pop("claims", None)
    cfg = payload.pop("config")
    cfg.setdefault("first_level_steps", cfg.get("steps_per_level", 400))  # written before the field: equal levels
    cfg = StudyConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()})
    return StudyResult(config=cfg, **payload)


def write_outputs(res: StudyResult, out_dir: str | Path, stem: str = "estimators") -> dict[str, Path]:
    """Write ``<stem>.md`` (table and checks), ``<stem>.json`` (config, summary, traces) and ``<stem>.png``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"md": out / f"{stem}.md", "json": out / f"{stem}.json", "png": out / f"{stem}.png"}
    plot(res, paths["png"])
    atomic_write_text(paths["md"], markdown_report(res, paths["png"].name))
    payload = asdict(res)
    payload["claims"] = claims(res)
    atomic_write_text(paths["json"], compact_json(payload))
    return paths


def compact_json(payload: dict) -> str:
    """One top-level key per line, each value on one line without spaces: the per-step traces are most of the
    file, and an indented dump would triple its size in the repository."""
    rows = [f"{json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}" for k, v in payload.items()]
    return "{\n" + ",\n".join(rows) + "\n}\n"
