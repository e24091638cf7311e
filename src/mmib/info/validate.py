"""The estimator validation study (``mmib info validate``): FactorCL Fig. 3 style (spec A.8.1, D.1.3–D.1.4).

**Gaussian staircase.** For each dimension d, every estimator is trained online on a stream of fresh batches
(batch 64) of :func:`~mmib.info.gaussian.correlated_gaussians`; the true MI steps through ``mis`` (default
2, 4, 6, 8, 10 nats), ``steps_per_level`` Adam steps per value, the critic carrying over from one value to the
next (as in FactorCL / CLUB's notebook). The first level is the cold start (every network, input maps included,
starts from its initialization) and trains ``first_level_steps`` Adam steps (default: the ``steps`` of
:func:`~mmib.info.estimate.estimate_mi`, 1,000; at least ``steps_per_level``). After each level the trained
estimator is evaluated on ``eval_batches`` fresh held-out batches of the same size (mean ± s.e.m.), and
diagnosed on 1,024 held-out samples (:mod:`mmib.info.diagnostics`: dead ReLU units, saturation). InfoNCE,
NCE-CLUB (both variants) come from one InfoNCE-trained critic. The defaults (critic, width, learning rate,
CLUB's q, the rows per training step, the weight average the estimates use, input standardization) are those
of :func:`~mmib.info.estimate.estimate_mi`: the training batches are ``train_batch_size`` rows (512 by default;
the evaluation stays at ``batch_size``), the standardization is fitted on 4,096 samples of the first level's data.

**Oracle rows.** Every bound evaluated with its optimal critic (the pointwise MI; CLUB's exact q) on the same number
of fresh batches of the same size: the ceiling each bound can reach at this batch size.

**Non-Gaussian check.** The same staircase on ``(x³, y³)`` (an invertible cubic map of every coordinate of both
variables; the MI and the oracle are unchanged), so that a critic cannot pass by matching the Gaussian form alone.

**Conditional check.** Conditional InfoNCE / NCE-CLUB on :func:`~mmib.info.gaussian.conditional_gaussians` with
known I(X1;X2|C): with ``negatives="same_condition"`` (every batch drawn at one c, negatives from p(x2|c)) and, for
contrast, with in-batch negatives across different c (FactorCL's code), which targets I([X1,C];[X2,C]).

The checks, the page, the plot and the JSON are in :mod:`mmib.info.validate_report`.
"""

from __future__ import annotations

import math
import platform
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from mmib.errors import UnknownNameError
from mmib.info.diagnostics import dead_unit_fraction, gaussian_oracle_estimates, saturation
from mmib.info.estimate import (
    DEFAULT_CLUB_Q,
    DEFAULT_EMA,
    DEFAULT_HIDDEN_DIM,
    DEFAULT_INPUT_MAP,
    DEFAULT_STANDARDIZE,
    DEFAULT_STEPS,
    averaged,
    check_lr,
    default_critic,
    default_critic_kwargs,
    default_lr,
    default_train_batch,
)
from mmib.info.estimators import build_estimator
from mmib.info.gaussian import conditional_gaussians, correlated_gaussians

#: estimator name -> (model that produces it, kind of bound)
STUDY_ESTIMATORS = {
    "infonce": ("nce", "lower"),
    "nwj": ("nwj", "lower"),
    "mine": ("mine", "lower"),
    "club": ("club", "upper"),
    "club_linear": ("club_linear", "upper"),
    "nce_club": ("nce", "upper"),
    "nce_club_offdiag": ("nce", "upper"),
}
#: the key of an estimator's value in the model's ``estimates`` where it differs from the study name
_KEY = {"club_linear": "club"}
_MODEL_METHOD = {"nce": "nce_club", "nwj": "nwj", "mine": "mine", "club": "club", "club_linear": "club"}
#: the data transforms of the staircase: name -> map applied to each variable (invertible; MI unchanged)
TRANSFORMS = {"gaussian": None, "cubic": lambda t: t**3}
#: stated before the run: InfoNCE must reach this fraction of its oracle row (where the oracle is below log N)
ORACLE_FRACTION = 0.7
#: stated before the run: every trained network keeps at most this fraction of dead ReLU units
MAX_DEAD = 0.1
DIAG_SAMPLES = 1024


@dataclass
class StudyConfig:
    dims: tuple[int, ...] = (20, 50, 100, 200)
    mis: tuple[float, ...] = (2.0, 4.0, 6.0, 8.0, 10.0)
    steps_per_level: int = 400
    # the first level, where every network starts from its initialization: estimate_mi's steps (a cold start);
    # at least steps_per_level (see level_steps)
    first_level_steps: int = DEFAULT_STEPS
    batch_size: int = 64
    # rows per training step, the weight average the estimate uses, input standardization: estimate_mi's defaults
    train_batch_size: int | None = None  # None: estimate_mi's default_train_batch (512; concat critic: batch_size)
    ema: float = DEFAULT_EMA
    standardize: bool = DEFAULT_STANDARDIZE
    eval_batches: int = 32
    estimators: tuple[str, ...] = tuple(STUDY_ESTIMATORS)
    # the non-Gaussian (cubic) staircase: which estimators run on it (empty: none)
    nongaussian_estimators: tuple[str, ...] = ("infonce", "club", "club_linear", "nce_club")
    critic: str | None = None  # None: each estimator's default (estimate_mi's default_critic: NWJ, MINE concat)
    hidden_dim: int = DEFAULT_HIDDEN_DIM
    lr: float | None = None  # None: estimate_mi's default_lr per model (1e-3; CLUB's MLP q 5e-4)
    club_q: str = DEFAULT_CLUB_Q
    input_map: str | None = DEFAULT_INPUT_MAP
    seed: int = 0
    cond_dim: int = 5
    cond_cmis: tuple[float, ...] = (0.5, 1.0, 2.0)
    cond_steps: int = 1000
    cond_eval_batches: int = 200
    # stated before the check: conditional InfoNCE (same-condition negatives) "recovers" the CMI when its estimate
    # lies within this fraction of the true value (it is a lower bound, biased low by the finite critic and batch)
    cond_rel_tolerance: float = 0.15

    def __post_init__(self) -> None:
        for e in (*self.estimators, *self.nongaussian_estimators):
            if e not in STUDY_ESTIMATORS:
                raise UnknownNameError("estimator", e, list(STUDY_ESTIMATORS))
        if self.train_batch_size is not None and (not isinstance(self.train_batch_size, int)
                                                  or self.train_batch_size < 2):
            raise ValueError(f"train_batch_size must be an integer >= 2 (or None), got {self.train_batch_size!r}")
        for name in ("steps_per_level", "first_level_steps", "batch_size", "hidden_dim", "cond_steps",
                     "cond_eval_batches", "eval_batches"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < (2 if name in ("steps_per_level", "first_level_steps", "eval_batches")
                                              else 1):
                raise ValueError(f"{name} must be a positive integer (steps_per_level, first_level_steps, "
                                 f"eval_batches >= 2), "
                                 f"got {v!r}")
        if not self.dims or any(not isinstance(d, int) or d < 1 for d in self.dims):
            raise ValueError(f"dims must be positive integers, got {self.dims!r}")
        if not self.mis or any(m <= 0 for m in self.mis):
            raise ValueError(f"mis must be positive numbers (nats), got {self.mis!r}")
        if self.lr is not None:  # None: estimate_mi's default_lr per model
            check_lr(self.lr)
        if not 0 <= self.ema < 1:
            raise ValueError(f"ema must be a decay in [0, 1) (0: no averaging), got {self.ema!r}")
        if not 0 < self.cond_rel_tolerance < 1:
            raise ValueError(f"cond_rel_tolerance must be a fraction in (0, 1), got {self.cond_rel_tolerance!r}")

    @classmethod
    def quick(cls, **overrides) -> StudyConfig:
        """A small configuration (a minute or so): two dimensions, three MI values, short training, every level
        of the same length (``first_level_steps`` = ``steps_per_level`` unless given)."""
        base = dict(dims=(20, 50), mis=(2.0, 6.0, 10.0), steps_per_level=150, cond_cmis=(1.0,), cond_steps=300,
                    cond_eval_batches=50, eval_batches=8)
        base.update(overrides)
        base.setdefault("first_level_steps", base["steps_per_level"])
        return cls(**base)

    def level_steps(self) -> tuple[int, ...]:
        """Adam steps of each MI level: ``max(first_level_steps, steps_per_level)`` at the first (the cold start),
        ``steps_per_level`` at every later one (their networks start from the previous level's)."""
        return (max(self.first_level_steps, self.steps_per_level),) + (self.steps_per_level,) * (len(self.mis) - 1)


@dataclass
class StudyResult:
    config: StudyConfig
    # summary[estimator][str(dim)] = list of {"true", "mean", "sem", "std", "max", "dead", "units", "saturation"}
    summary: dict = field(default_factory=dict)
    # the same for the cubic staircase
    summary_nongaussian: dict = field(default_factory=dict)
    # oracle[estimator][str(dim)] = list of {"true", "mean", "sem"}
    oracle: dict = field(default_factory=dict)
    traces: dict = field(default_factory=dict)  # traces[estimator][str(dim)] = per-step values
    conditional: list = field(default_factory=list)
    log_batch: float = 0.0
    log_train_batch: float = 0.0  # the training traces are InfoNCE on train_batch_size rows
    seconds: float = 0.0
    environment: dict = field(default_factory=dict)


def train_batch(cfg: StudyConfig, model: str) -> int:
    """Rows per training step of ``model`` (``nce``, ``club``, ...): ``cfg.train_batch_size`` or estimate_mi's
    default for the method and critic."""
    if cfg.train_batch_size is not None:
        return cfg.train_batch_size
    return default_train_batch("club" if model.startswith("club") else _MODEL_METHOD[model], model_critic(cfg, model),
                               cfg.batch_size)


def model_lr(cfg: StudyConfig, model: str) -> float:
    """The Adam learning rate of ``model`` (``nce``, ``club``, ``club_linear``, ...): ``cfg.lr``, else
    estimate_mi's :func:`~mmib.info.estimate.default_lr` for its method and q (CLUB's MLP q: 5e-4; else 1e-3)."""
    if cfg.lr is not None:
        return cfg.lr
    if model.startswith("club"):
        return default_lr("club", "linear" if model == "club_linear" else cfg.club_q)
    return default_lr(_MODEL_METHOD[model])


def model_critic(cfg: StudyConfig, model: str) -> str:
    """The critic of ``model`` (``nce``, ``nwj``, ``mine``): ``cfg.critic``, else estimate_mi's default for it."""
    return cfg.critic or default_critic(_MODEL_METHOD.get(model, model))


def _models(estimators) -> list[str]:
    return sorted({STUDY_ESTIMATORS[e][0] for e in estimators}, key=list(_MODEL_METHOD).index)


def _build(cfg: StudyConfig, model: str, d: int):
    if model == "club":
        return build_estimator("club", d, d, q=cfg.club_q, hidden_dim=cfg.hidden_dim, input_map=cfg.input_map)
    if model == "club_linear":
        return build_estimator("club", d, d, q="linear", input_map=cfg.input_map)
    critic = model_critic(cfg, model)
    return build_estimator(_MODEL_METHOD[model], d, d, critic=critic, input_map=cfg.input_map,
                           critic_kwargs=default_critic_kwargs(critic, cfg.hidden_dim))


def _mean_sem(vals) -> tuple[float, float]:
    a = np.asarray(vals, dtype=float)
    return float(a.mean()), float(a.std(ddof=1) / math.sqrt(len(a))) if len(a) > 1 else float("nan")


def _staircase(cfg: StudyConfig, d: int, model: str, wanted: list[str], transform, advance):
    """Train one model through the staircase; per level, held-out estimates and diagnostics."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed * 1000 + d)
        est = _build(cfg, model, d)
    opt = torch.optim.Adam(est.parameters(), lr=model_lr(cfg, model))
    gen = torch.Generator().manual_seed(cfg.seed * 1000 + d)  # the same stream for every model
    held = torch.Generator().manual_seed(cfg.seed * 1000 + d + 500_000)  # held-out batches

    def draw(n, mi, g):
        x, y = correlated_gaussians(n, d, float(mi), g)
        return (x, y) if transform is None else (transform(x), transform(y))

    if cfg.standardize:  # as estimate_mi on its data: the statistics of a sample of the first level's data
        est.fit_standardization(*draw(DIAG_SAMPLES * 4, cfg.mis[0],
                                      torch.Generator().manual_seed(cfg.seed * 1000 + d + 700_000)))
    avg = averaged(est, cfg.ema)

    n_train = train_batch(cfg, model)
    trace = {e: [] for e in wanted}
    levels: dict[str, list] = {e: [] for e in wanted}
    for mi, n_steps in zip(cfg.mis, cfg.level_steps(), strict=True):
        batch_vals = {e: [] for e in wanted}
        for _ in range(n_steps):
            x, y = draw(n_train, mi, gen)
            loss, vals = est.loss_and_estimates(x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if avg is not None:
                avg.update_parameters(est)
            for e in wanted:
                v = float(vals[_KEY.get(e, e)].detach())
                trace[e].append(v)
                batch_vals[e].append(v)
            advance(1)
        ev = {e: [] for e in wanted}
        model_eval = avg.module if avg is not None else est  # the weight average (estimate_mi's estimate)
        with torch.no_grad():
            for _ in range(cfg.eval_batches):
                out = model_eval.estimates(*draw(cfg.batch_size, mi, held))
                for e in wanted:
                    ev[e].append(float(out[_KEY.get(e, e)]))
        xd, yd = draw(DIAG_SAMPLES, mi, held)
        dead, units = dead_unit_fraction(model_eval, xd, yd, cfg.batch_size)
        sat = saturation(model_eval, xd, yd, cfg.batch_size)
        for e in wanted:
            m, sem = _mean_sem(ev[e])
            levels[e].append({"true": float(mi), "mean": m, "sem": sem, "std": float(np.std(ev[e])),
                              "max": float(max(batch_vals[e])), "dead": dead, "units": units,
                              "saturation": sat})
    return levels, trace


def run_gaussian_study(cfg: StudyConfig, reporter=None) -> StudyResult:
    """Run the staircases (Gaussian, cubic), the oracle rows and the conditional check; ``reporter`` is an
    :class:`mmib.utils.progress.ProgressReporter`-like object (``task(description, total)`` context manager), or
    ``None``."""
    t0 = time.time()
    res = StudyResult(config=cfg, log_batch=math.log(cfg.batch_size), log_train_batch=math.log(train_batch(cfg, "nce")))
    runs = [("gaussian", m) for m in _models(cfg.estimators)]
    runs += [("cubic", m) for m in _models(cfg.nongaussian_estimators)]
    total = len(cfg.dims) * len(runs) * sum(cfg.level_steps())
    with _task(reporter, "Gaussian / cubic staircases", total) as advance:
        for d in cfg.dims:
            for data, model in runs:
                pool = cfg.estimators if data == "gaussian" else cfg.nongaussian_estimators
                wanted = [e for e in pool if STUDY_ESTIMATORS[e][0] == model]
                levels, trace = _staircase(cfg, d, model, wanted, TRANSFORMS[data], advance)
                target = res.summary if data == "gaussian" else res.summary_nongaussian
                for e in wanted:
                    target.setdefault(e, {})[str(d)] = levels[e]
                    if data == "gaussian":
                        res.traces.setdefault(e, {})[str(d)] = [round(v, 3) for v in trace[e]]
    res.oracle = oracle_rows(cfg)
    res.conditional = run_conditional_check(cfg, reporter)
    res.seconds = time.time() - t0
    res.environment = {"torch": torch.__version__, "python": platform.python_version(),
                       "threads": torch.get_num_threads(), "machine": platform.machine(),
                       # the learning rates this run used (cfg.lr None: the defaults of this version)
                       "learning_rates": {m: model_lr(cfg, m) for m in _MODEL_METHOD}}
    return res


def oracle_rows(cfg: StudyConfig) -> dict:
    """Each estimator's bound with its optimal critic, ``eval_batches`` fresh batches per cell (mean ± s.e.m.)."""
    names = sorted(set(cfg.estimators) | set(cfg.nongaussian_estimators), key=list(STUDY_ESTIMATORS).index)
    out: dict = {e: {} for e in names}
    for d in cfg.dims:
        gen = torch.Generator().manual_seed(cfg.seed * 1000 + d + 900_000)
        for e in names:
            out[e][str(d)] = []
        for mi in cfg.mis:
            vals = [gaussian_oracle_estimates(*correlated_gaussians(cfg.batch_size, d, float(mi), gen), mi)
                    for _ in range(cfg.eval_batches)]
            for e in names:
                m, sem = _mean_sem([v[e] for v in vals])
                out[e][str(d)].append({"true": float(mi), "mean": m, "sem": sem})
    return out


def run_conditional_check(cfg: StudyConfig, reporter=None) -> list[dict]:
    """Conditional InfoNCE / NCE-CLUB vs the known CMI of :func:`conditional_gaussians` (spec D.1.4)."""
    out = []
    modes = [("same_condition", cfg.batch_size), ("batch", 1)]
    total = len(cfg.cond_cmis) * len(modes) * (cfg.cond_steps + cfg.cond_eval_batches)
    d = cfg.cond_dim
    with _task(reporter, "Conditional check", total) as advance:
        for cmi in cfg.cond_cmis:
            for negatives, per_cond in modes:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(cfg.seed)
                    critic = model_critic(cfg, "nce")
                    est = build_estimator("nce_club", d, d, c_dim=d, critic=critic,
                                          critic_kwargs=default_critic_kwargs(critic, cfg.hidden_dim),
                                          negatives=negatives, input_map=cfg.input_map)
                opt = torch.optim.Adam(est.parameters(), lr=model_lr(cfg, "nce"))
                gen = torch.Generator().manual_seed(cfg.seed + 1)
                if cfg.standardize:
                    x1, x2, _ = conditional_gaussians(DIAG_SAMPLES * 4, d, float(cmi),
                                                      torch.Generator().manual_seed(cfg.seed + 700_000))
                    est.fit_standardization(x1, x2)
                avg = averaged(est, cfg.ema)
                n_train = per_cond * max(1, train_batch(cfg, "nce") // per_cond)  # whole groups of one condition
                for _ in range(cfg.cond_steps):
                    x1, x2, c = conditional_gaussians(n_train, d, float(cmi), gen, samples_per_condition=per_cond)
                    loss = est.learning_loss(x1, x2, c)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    if avg is not None:
                        avg.update_parameters(est)
                    advance(1)
                if avg is not None:
                    est = avg.module
                vals: dict[str, list[float]] = {"infonce": [], "nce_club": []}
                with torch.no_grad():
                    for _ in range(cfg.cond_eval_batches):
                        x1, x2, c = conditional_gaussians(cfg.batch_size, d, float(cmi), gen,
                                                          samples_per_condition=per_cond)
                        v = est.estimates(x1, x2, c)
                        for k in vals:
                            vals[k].append(float(v[k]))
                        advance(1)
                out.append({"true_cmi": float(cmi), "dim": d, "negatives": negatives,
                            **{k: float(np.mean(v)) for k, v in vals.items()},
                            **{k + "_sem": float(np.std(v) / math.sqrt(len(v))) for k, v in vals.items()}})
    return out


class _NullTask:
    def __enter__(self):
        return lambda n=1: None

    def __exit__(self, *exc):
        return False


def _task(reporter, description, total):
    return reporter.task(description, total=total) if reporter is not None else _NullTask()
