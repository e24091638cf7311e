"""Hyperparameter tuning of a suite's method variants with an equal budget (Optuna), on the validation split only.

A suite's ``tune:`` block::

    tune:
      data: mfeat-3v                 # the data entry tuned on (default: the suite's first)
      seed: 0                        # the training seed of every trial (default: the suite's first seed)
      n_trials: 20                   # trials per method variant; pruned and failed trials count toward it
      sampler: {name: tpe, seed: 0}  # tpe | random | qmc | cmaes (+ their options); one seed for every variant
      pruner: {name: median, n_warmup_steps: 2}   # none (default) | median | percentile | successive_halving | hyperband
      metric: {logged: val/loss}     # a validation metric the run logs (trainer.callback_metrics at the end) ...
      # metric: {probe: linear, representation: concat, metric: accuracy}  # ... or a probe: fit on the train
      #   split's representations, scored on the val split's (never the test split)
      # metric: {oom: accuracy}      # ... or an oom protocol metric (accuracy, acc_best_perm, R@1/oom->im, ...)
      #   of the trained method on the val split (OOM methods: the prediction from the OOM input alone)
      direction: minimize            # default: from the metric's name (loss, *rank: minimize; else maximize)
      trainer: {max_epochs: 10}      # optional: trainer keys of the trials (default: the suite's)
      space:                         # per method variant (suite name): dotted config keys from the root
        clip:
          method.objective.temperature: {low: 0.01, high: 1.0, log: true}
          method.optim.lr: {low: 1.0e-4, high: 1.0e-2, log: true}
        ova_ib:
          method.objective.beta: {choices: [0.0, 0.01, 0.1]}
          method.head_layers: {low: 1, high: 3, int: true}
      inherit:                       # optional: untuned variants (ablations) that take a tuned variant's values
        ova_ib-beta0: ova_ib         #   (they wait for its study; their own overrides still apply on top)

Every variant named under ``space`` gets its own Optuna study with the same ``n_trials``, sampler (and sampler seed)
and pruner: an equal budget. A trial trains the variant on ``data`` at ``seed`` with the suggested values (a full
engine run under ``<suite folder>/tune/<variant>-<fingerprint>/trial-<n>/``) and is scored on the validation split;
the pruner, if any, sees the monitored validation metric after each validation epoch (``pruner.monitor``, default
the logged metric or ``val/loss``). The best trial's values then enter the variant's config for every seed of the
variant (the suite's seeds, or the variant's own ``seeds:``; its trials run at ``seed`` either way, so every tuned
variant gets the same budget) and so the runs' fingerprints. The study (Optuna journal ``tune/journal.log``) resumes after an interruption
(an interrupted trial is marked failed and does not count); a finished study is kept as ``tune/<variant>.json`` and in
the suite's ``results.json`` (``tune``) with every trial's values and validation score, so it is not redone on
another machine.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmib.bench.tune_spec import TuneSpec
from mmib.errors import MMIBError


def _optuna():
    try:
        import optuna
    except ImportError:  # pragma: no cover - the tune extra is part of `make venv`
        raise MMIBError("tuning needs Optuna: pip install 'mmib[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def make_sampler(spec: Mapping[str, Any]):
    optuna = _optuna()
    opts = {k: v for k, v in spec.items() if k != "name"}
    cls = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler,
           "qmc": optuna.samplers.QMCSampler, "cmaes": optuna.samplers.CmaEsSampler}[spec["name"]]
    return cls(**opts)


def make_pruner(spec: Mapping[str, Any]):
    optuna = _optuna()
    opts = {k: v for k, v in spec.items() if k not in ("name", "monitor")}
    return {"none": optuna.pruners.NopPruner, "median": optuna.pruners.MedianPruner,
            "percentile": optuna.pruners.PercentilePruner,
            "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
            "hyperband": optuna.pruners.HyperbandPruner}[spec["name"]](**opts)


def suggest(trial, space: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    out = {}
    for key, p in space.items():
        if "choices" in p:
            out[key] = trial.suggest_categorical(key, p["choices"])
        elif p["int"]:
            out[key] = trial.suggest_int(key, int(p["low"]), int(p["high"]), step=int(p.get("step") or 1),
                                         log=p["log"])
        else:
            out[key] = trial.suggest_float(key, float(p["low"]), float(p["high"]), step=p.get("step"), log=p["log"])
    return out


def _pruning_callback(trial, monitor: str, sign: float):
    import lightning as L

    optuna = _optuna()

    class Pruning(L.Callback):
        """Reports the monitored validation metric after each validation epoch; raises TrialPruned when told."""

        def on_validation_end(self, trainer, pl_module):
            if trainer.sanity_checking or monitor not in trainer.callback_metrics:
                return
            v = float(trainer.callback_metrics[monitor])
            if not math.isfinite(v):
                return
            trial.report(sign * v, step=trainer.current_epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {trainer.current_epoch} ({monitor} = {v:.6g})")

    return Pruning()


# ------------------------------------------------------------------------------------------------- scoring
def validation_score(spec: TuneSpec, train_result) -> float:
    """The selection metric of a finished trial, from the validation split only."""
    m = spec.metric
    if "logged" in m:
        if m["logged"] not in train_result.metrics:
            raise MMIBError(f"tune: the run did not log '{m['logged']}' (logged: {sorted(train_result.metrics)})")
        return float(train_result.metrics[m["logged"]])
    if "oom" in m:
        return oom_validation_score(train_result.method, train_result.datamodule, str(m["oom"]))
    from mmib.eval.probe import ProbeConfig, fit_probe
    from mmib.eval.representations import extract_split

    dm, method = train_result.datamodule, train_result.method
    if not len(dm.indices["val"]):
        raise MMIBError(f"tune: data set '{dm.spec.name}' has no val split to select on")
    rep = str(m["representation"])
    tr = extract_split(method, dm, "train", m.get("modalities"), [rep])
    va = extract_split(method, dm, "val", m.get("modalities"), [rep])
    cfg = ProbeConfig.from_options(str(m["probe"]), m.get("probe_options"), seed=spec.seed)
    # the val split is the probe's evaluation set here (no early stopping: the test split is not touched)
    r = fit_probe(tr.features[rep], tr.y, None, None, va.features[rep], va.y, dm.spec.task, dm.spec.n_classes, cfg)
    if m["metric"] not in r.metrics:
        raise MMIBError(f"tune: the probe has no metric '{m['metric']}' (has {sorted(r.metrics)})")
    return float(r.metrics[m["metric"]])


def oom_validation_score(method, dm, name: str) -> float:
    """An oom protocol metric (:func:`mmib.eval.oom.evaluate_oom`) of a trained method on the val split: the same
    numbers the ``oom`` protocol reports on the test split (the IM mappings' MMD reads the train split)."""
    from mmib.eval.oom import evaluate_oom

    if not len(dm.indices["val"]):
        raise MMIBError(f"tune: data set '{dm.spec.name}' has no val split to select on")
    values = evaluate_oom(method, dm, split="val")
    if name not in values:
        raise MMIBError(f"tune: the oom protocol has no metric '{name}' (has {sorted(values)})")
    return float(values[name])


# ------------------------------------------------------------------------------------------------- studies
def _fingerprint(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def trial_overrides(suite, spec: TuneSpec, variant_name: str, folder: Path) -> list[str]:
    """The Hydra overrides of a variant's trials without the tuned values (the suite's config at the tune seed)."""
    from mmib.bench.overrides import run_overrides

    variant = next(v for v in suite.methods if v.name == variant_name)
    data = next(d for d in suite.data if d.name == spec.data)
    s = copy.copy(suite)
    s.trainer = {**suite.trainer, **spec.trainer}
    return run_overrides(s, variant, data, spec.seed, folder, progress=False)


def study_fingerprint(suite, spec: TuneSpec, variant_name: str) -> str:
    """Changes when anything a trial computes changes: the variant's base config, its space, the shared budget."""
    from mmib.bench.overrides import config_fingerprint
    from mmib.config import compose_config, to_container

    cfg = to_container(compose_config(trial_overrides(suite, spec, variant_name, Path("."))))
    return _fingerprint({"config": config_fingerprint(cfg, None), "space": spec.space[variant_name],
                         "budget": spec.shared()})


def _trial_record(t, interrupted: set[int]) -> dict[str, Any]:
    return {"number": t.number, "state": t.state.name, "params": dict(t.params),
            "value": t.value if t.state.name == "COMPLETE" else None,
            "intermediate": {int(k): float(v) for k, v in sorted(t.intermediate_values.items())},
            "error": t.user_attrs.get("error"), "interrupted": t.number in interrupted}


def _counted(trials, interrupted: set[int]) -> list:
    """Trials toward the budget: complete, pruned and failed ones (not those cut off by an interruption)."""
    return [t for t in trials if t.state.name in ("COMPLETE", "PRUNED", "FAIL") and t.number not in interrupted]


def tune_variant(suite, spec: TuneSpec, variant_name: str, tune_dir: Path, console=None) -> dict[str, Any]:
    """Run (or finish) one variant's study; returns its record (chosen values, every trial's validation score)."""
    optuna = _optuna()
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from mmib.config import compose_config, dotted_overrides
    from mmib.engine import train

    fp = study_fingerprint(suite, spec, variant_name)
    tune_dir.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(str(tune_dir / "journal.log")))
    study = optuna.create_study(study_name=f"{variant_name}-{fp}", storage=storage, direction=spec.direction,
                                sampler=make_sampler(spec.sampler), pruner=make_pruner(spec.pruner),
                                load_if_exists=True)
    # trials cut off by an interruption of an earlier session (one process runs a study): failed, not counted
    stale = [t.number for t in study.get_trials(deepcopy=False) if t.state.name == "RUNNING"]
    if stale:
        study.set_user_attr("interrupted", sorted({*study.user_attrs.get("interrupted", []), *stale}))
        for n in stale:
            study.tell(n, state=optuna.trial.TrialState.FAIL)
    interrupted = set(study.user_attrs.get("interrupted", []))
    folder = tune_dir / f"{variant_name}-{fp}"
    base = trial_overrides(suite, spec, variant_name, folder)
    monitor = spec.pruner.get("monitor") or spec.metric.get("logged") or "val/loss"
    from mmib.eval.metrics import higher_is_better

    monitor_max = higher_is_better(str(monitor).rsplit("/", 1)[-1])
    sign = 1.0 if monitor_max == (spec.direction == "maximize") else -1.0

    def objective(trial):
        values = suggest(trial, spec.space[variant_name])
        ov = [*base, *dotted_overrides(values), f"name=trial-{trial.number}"]
        callbacks = [] if spec.pruner["name"] == "none" else [_pruning_callback(trial, monitor, sign)]
        try:
            res = train(compose_config(ov), callbacks=callbacks)
            score = validation_score(spec, res)
        except optuna.TrialPruned:
            raise
        except Exception as e:
            trial.set_user_attr("error", f"{type(e).__name__}: {e}")
            raise
        if not math.isfinite(score):
            raise MMIBError(f"tune: trial {trial.number} scored {score}")
        if console is not None:
            console.print(f"  tune {variant_name} trial {trial.number}: {values} → {score:.6g}", highlight=False,
                          markup=False)
        return score

    left = spec.n_trials - len(_counted(study.get_trials(deepcopy=False), interrupted))
    if left > 0:
        # a failing trial counts toward the budget (FAIL) and the study goes on
        study.optimize(objective, n_trials=left, catch=(Exception,), gc_after_trial=True)
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    if not complete:
        errors = sorted({t.user_attrs.get("error") or t.state.name for t in trials})
        raise MMIBError(f"tune {variant_name}: no trial completed ({errors})")
    best = study.best_trial
    record = {"variant": variant_name, "fingerprint": fp, "study": study.study_name, "data": spec.data,
              "seed": spec.seed, "direction": spec.direction, "metric": spec.metric, "budget": spec.shared(),
              "space": spec.space[variant_name], "chosen": dict(best.params), "best_value": best.value,
              "best_trial": best.number, "n_counted": len(_counted(trials, interrupted)),
              "trials": [_trial_record(t, interrupted) for t in trials]}
    from mmib.utils.io import atomic_write_json

    atomic_write_json(tune_dir / f"{variant_name}.json", record)
    return record


def known_tuning(suite, spec: TuneSpec, tune_dir: Path, *records: Mapping[str, Any] | None) -> dict[str, dict]:
    """Finished studies whose fingerprint matches, from ``tune/<variant>.json`` or earlier results (a suite's
    ``results.json`` ``tune`` section): variant → record."""
    out: dict[str, dict] = {}
    for v in spec.space:
        fp = study_fingerprint(suite, spec, v)
        cands = []
        p = tune_dir / f"{v}.json"
        if p.is_file():
            try:
                cands.append(json.loads(p.read_text()))
            except ValueError:
                pass
        for rec in records:
            if rec and isinstance(rec.get(v), Mapping):
                cands.append(rec[v])
        hit = next((c for c in cands if c.get("fingerprint") == fp and c.get("n_counted", 0) >= spec.n_trials), None)
        if hit is not None:
            out[v] = dict(hit)
    return out


def apply_tuning(suite, chosen: Mapping[str, Mapping[str, Any]]):
    """A copy of the suite whose tuned variants carry their chosen values in ``config`` (dotted keys from the root,
    last in precedence), so they enter every run's overrides and fingerprint. A variant under the tune block's
    ``inherit`` takes its parent's chosen values."""
    s = copy.deepcopy(suite)
    inherit = getattr(suite.tune, "inherit", None) or {}
    chosen = {**{v: chosen[p] for v, p in inherit.items() if p in chosen}, **chosen}
    for v in s.methods:
        if v.name in chosen:
            v.config = {**v.config, **chosen[v.name]}
    return s


def tune_suite(suite, out: Path, previous: Mapping[str, Any] | None = None, console=None,
               only: list[str] | None = None) -> dict[str, dict]:
    """Every tuned variant's study (done ones from their records), variant → record."""
    spec = suite.tune
    tune_dir = Path(out) / "tune"
    known = known_tuning(suite, spec, tune_dir, previous)
    for v in spec.space:
        if v in known or (only is not None and v not in only):
            continue
        if console is not None:
            console.print(f"tune {v}: {spec.n_trials} trials on {spec.data}, seed {spec.seed} "
                          f"(sampler {spec.sampler['name']}, pruner {spec.pruner['name']})", highlight=False)
        known[v] = tune_variant(suite, spec, v, tune_dir, console)
    return known
