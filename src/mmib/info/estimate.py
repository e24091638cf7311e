"""Estimate I(X;Y) or I(X;Y|C) from samples with one trainable estimator (:func:`estimate_mi`), and the defaults it
shares with ``mmib info validate`` (:mod:`mmib.info.validate`). The estimators themselves are in
:mod:`mmib.info.estimators`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from mmib.info.conditioning import Condition, check_inputs, is_pair
from mmib.info.estimators import build_estimator

#: Defaults shared by :func:`estimate_mi` and ``mmib info validate`` (:mod:`mmib.info.validate`), chosen by the
#: measurements in ``docs/results/estimators.md`` and ``docs/guide/information.md``: a separable critic
#: ``g(x)ᵀh(y)`` (ReLU MLPs of width 512 to 256-dimensional embeddings, plus a linear skip ``A x``, ``B y``, so the
#: rank-d bilinear form of the Gaussian optimum is in reach at d = 200), Adam at 1e-3 (at 5e-3 most of CLUB's ReLU
#: units died at d = 200), CLUB's Gaussian q with MLPs of width 512 (a width-64 layer cannot carry a full-rank
#: 200 -> 200 conditional mean); training on minibatches of 512 rows (the critic's optimum does not depend on the
#: batch size, its sample noise does; the estimate is still evaluated at ``batch_size``; the concatenation critic
#: keeps ``batch_size``, see :func:`default_train_batch`), the estimate taken with an
#: exponential moving average of the weights (decay 0.99), and every coordinate of x and y standardized (an affine
#: map per coordinate: the MI is unchanged).
DEFAULT_CRITIC = "separable"
#: the critic of NWJ and MINE: the separable critic's default trained NWJ / MINE to estimates far below zero (d = 20:
#: NWJ about -45 to -67, MINE -4 to -26 nats, whatever the weight average, input maps, training batch or learning
#: rate; NWJ's scores diverged at d = 200), the concatenation critic to 1.90 / 4.68 / 6.79 (NWJ) and 1.92 / 4.79 /
#: 8.76 (MINE) at true MI 2 / 6 / 10 (docs/guide/information.md)
CRITIC_BY_METHOD = {"nwj": "concat", "mine": "concat"}
DEFAULT_HIDDEN_DIM = 512
DEFAULT_EMBED_DIM = 256
DEFAULT_LR = 1e-3
#: the learning rate of CLUB with its MLP q: at 1e-3, 10-14 % of a q layer's ReLU units died at d = 200, true MI
#: 10 nats (seeds 0, 1, 2 of ``mmib info validate``); at 5e-4 at most 0.8 %, and the estimates stay above the truth
#: and nearer the exact-q values (docs/guide/information.md). The linear-Gaussian q has no ReLU units: DEFAULT_LR.
DEFAULT_CLUB_MLP_LR = 5e-4
DEFAULT_CLUB_Q = "mlp"
DEFAULT_TRAIN_BATCH = 512
DEFAULT_EMA = 0.99
DEFAULT_STANDARDIZE = True
DEFAULT_INPUT_MAP: str | None = "monotone"
#: Adam steps of :func:`estimate_mi`, which trains its estimator from its initialization (a cold start); also the
#: steps of the first level of ``mmib info validate``'s staircase (``StudyConfig.first_level_steps``), the one level
#: whose networks start cold (400 steps were too few there for the input maps at d = 200 on the cubic data;
#: ``docs/guide/information.md``)
DEFAULT_STEPS = 1000


def default_critic_kwargs(critic, hidden_dim: int = DEFAULT_HIDDEN_DIM) -> dict:
    """The keyword arguments :func:`estimate_mi` and ``mmib info validate`` give the critic ``critic``."""
    if critic == "separable":
        return {"hidden_dim": hidden_dim, "embed_dim": DEFAULT_EMBED_DIM, "linear_skip": True}
    if critic == "concat":
        return {"hidden_dim": hidden_dim}
    return {}


def default_lr(method: str, club_q: str = DEFAULT_CLUB_Q) -> float:
    """The Adam learning rate :func:`estimate_mi` and ``mmib info validate`` use for ``method`` by default:
    :data:`DEFAULT_CLUB_MLP_LR` for CLUB with its MLP q (``club_q="mlp"``), else :data:`DEFAULT_LR`."""
    return DEFAULT_CLUB_MLP_LR if method == "club" and club_q == "mlp" else DEFAULT_LR


def check_lr(lr: object) -> float:
    """``lr`` if it is a finite number > 0 (not a bool), else a ValueError naming it."""
    if isinstance(lr, bool) or not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    return lr


def default_critic(method: str) -> str:
    """The critic :func:`estimate_mi` and ``mmib info validate`` use for ``method`` by default:
    :data:`CRITIC_BY_METHOD` (NWJ, MINE: ``concat``), else :data:`DEFAULT_CRITIC`."""
    return CRITIC_BY_METHOD.get(method, DEFAULT_CRITIC)


def default_train_batch(method: str, critic, batch_size: int, n: int | None = None) -> int:
    """The rows per training step :func:`estimate_mi` uses by default: :data:`DEFAULT_TRAIN_BATCH` (at most ``n``,
    at least ``batch_size``) where a step costs O(N) — CLUB's q, the separable and bilinear critics — and
    ``batch_size`` for the concatenation critic, which runs its MLP on all N² pairs of a batch."""
    if method != "club" and critic == "concat":
        return batch_size
    return max(batch_size, DEFAULT_TRAIN_BATCH if n is None else min(DEFAULT_TRAIN_BATCH, n))


def averaged(est: nn.Module, ema: float):
    """An exponential moving average of ``est``'s weights and buffers (``torch.optim.swa_utils.AveragedModel``;
    update it with ``.update_parameters(est)`` after each step, evaluate ``.module``), or ``None`` for ``ema == 0``.

    The decay after ``t`` updates is ``min(ema, (1 + t) / (10 + t))`` (the warm-up of TensorFlow's
    ``ExponentialMovingAverage`` with ``num_updates``), so that a short run is not dominated by the initial weights.
    """
    if not (isinstance(ema, (int, float)) and 0.0 <= ema < 1.0):
        raise ValueError(f"ema must be a decay in [0, 1) (0: no averaging), got {ema!r}")
    if ema == 0:
        return None
    from torch.optim.swa_utils import AveragedModel

    def update(avg_list, cur_list, num_averaged):
        t = float(num_averaged)
        weight = 1.0 - min(float(ema), (1.0 + t) / (10.0 + t))
        with torch.no_grad():
            for a, c in zip(avg_list, cur_list, strict=True):
                a.lerp_(c.to(a.dtype), weight)

    return AveragedModel(est, multi_avg_fn=update, use_buffers=True)


@dataclass
class MIEstimateResult:
    """The outcome of :func:`estimate_mi` (nats). ``float(result)`` is ``result.value``."""

    value: float
    stderr: float
    method: str
    steps: int
    batch_size: int
    history: list[float] = field(default_factory=list)  # per-step training estimate (on train_batch_size rows)
    dead_units: float = float("nan")  # fraction of dead ReLU units after training (nan: not computed, with c)
    saturation: float | None = None  # see mmib.info.diagnostics.saturation

    def __float__(self) -> float:
        return self.value


class _BatchSampler:
    """Random minibatches of indices; with groups, every batch comes from one group chosen with probability
    proportional to its size (so averaging over batches is the expectation over p(c), FactorCL Eq. 13)."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator, groups: list[torch.Tensor] | None):
        self.n, self.batch_size, self.gen = n, batch_size, generator
        self.groups = [g for g in groups if len(g) >= 2] if groups is not None else None
        if self.groups is not None:
            if not self.groups:
                raise ValueError("negatives='same_condition': no conditioning value occurs twice in c; "
                                 "draw several samples per condition")
            self.weights = torch.tensor([float(len(g)) for g in self.groups])

    def __call__(self, size: int | None = None) -> torch.Tensor:
        size = self.batch_size if size is None else size
        if self.groups is None:
            return torch.randperm(self.n, generator=self.gen)[:size]
        g = self.groups[int(torch.multinomial(self.weights, 1, generator=self.gen))]
        return g[torch.randperm(len(g), generator=self.gen)[:size]]


def estimate_mi(
    x: torch.Tensor,
    y: torch.Tensor,
    c: Condition = None,
    method: str = "infonce",
    steps: int = DEFAULT_STEPS,
    batch_size: int = 64,
    seed: int = 0,
    critic: str | None = None,
    critic_kwargs: dict | None = None,
    lr: float | None = None,
    club_q: str = DEFAULT_CLUB_Q,
    club_hidden_dim: int = DEFAULT_HIDDEN_DIM,
    negatives: str | None = None,
    condition_on: str = "both",
    eval_batches: int = 50,
    progress: bool = False,
    train_batch_size: int | None = None,
    ema: float = DEFAULT_EMA,
    standardize: bool = DEFAULT_STANDARDIZE,
    input_map: str | None = DEFAULT_INPUT_MAP,
) -> MIEstimateResult:
    """Train an estimator on ``(x, y[, c])`` and return its estimate of I(X;Y) or I(X;Y|C) in nats.

    Training: ``steps`` Adam steps (learning rate ``lr``, default :func:`default_lr`: 1e-3, CLUB's MLP q 5e-4) on random minibatches of ``train_batch_size`` rows
    (default :func:`default_train_batch`: 512, at most the number of samples and at least ``batch_size``, except
    for the concatenation critic, whose steps cost O(N²): ``batch_size``; with ``negatives="same_condition"`` at
    most the size of the conditioning group a minibatch is drawn from).
    Estimate: the mean of the estimator over ``eval_batches`` random minibatches of ``batch_size`` rows after
    training (the bounds depend on that batch size, e.g. InfoNCE <= log batch_size), with its standard error,
    computed with the exponential moving average (decay ``ema``) of the weights over the training steps.
    The estimate is taken on the same data as the training: hold data out yourself for an out-of-sample value.

    With ``c`` the default is ``negatives="same_condition"`` and every minibatch is drawn from one conditioning
    value (see :mod:`mmib.info.estimators`). ``c=(c_x, c_y)`` conditions each side on its own variable
    (``f([x, c_x], [y, c_y])``, FactorCL-SSL); the groups of ``same_condition`` are then the joint rows
    ``(c_x, c_y)``, so continuous views need ``negatives="batch"``.

    The defaults (:data:`DEFAULT_CRITIC` of width :data:`DEFAULT_HIDDEN_DIM`, :func:`default_lr`, CLUB's q) are those
    of ``mmib info validate``. The result carries two diagnostics of the trained network on (up to) 1,024 rows
    drawn after training: the fraction of dead ReLU units and the saturation (:mod:`mmib.info.diagnostics`).

    Args:
        method: ``infonce``, ``nwj``, ``mine``, ``club``, ``nce_club``, ``nce_club_offdiag``.
        critic, critic_kwargs: the critic of the critic-based methods (``critic`` default: :func:`default_critic`,
            ``separable``, for NWJ and MINE ``concat``; ``critic_kwargs`` default:
            :func:`default_critic_kwargs`: ``separable`` of width 512, 256-dimensional embeddings and a linear
            skip; ``concat`` of width 512).
        club_q, club_hidden_dim: CLUB's variational family (``"mlp"`` or ``"linear"``) and MLP width.
        train_batch_size: rows per training step (``None``: the default above). The optimal critic does not
            depend on it; its sample noise does (measured in ``docs/guide/information.md``).
        ema: decay of the moving average of the weights used for the estimate (0: the last weights).
        standardize: standardize every coordinate of ``x`` and ``y`` by its mean and standard deviation over
            all samples before the critic (:meth:`MIEstimator.fit_standardization`; ``c`` is not touched).
        input_map: ``"monotone"`` (default): a learned increasing map of every coordinate of ``x`` and ``y``
            before the critic / CLUB's q (:class:`~mmib.info.critics.MonotoneMap`; the MI is unchanged by it, and it
            lets the critic undo a monotone distortion of each coordinate: the validation's cubic rows); ``None``:
            the standardized values as they are.
        seed: seeds the critic's initialization and the minibatch order (global RNG state is left untouched).

    Raises:
        ValueError: on malformed inputs or arguments; UnknownNameError on an unknown ``method``/``critic``.
    """
    for name, v, lo in (("steps", steps, 0), ("batch_size", batch_size, 2), ("eval_batches", eval_batches, 1)):
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    lr = check_lr(default_lr(method, club_q) if lr is None else lr)
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    if y.dim() == 1:
        y = y[:, None]
    if x.dim() == 1:
        x = x[:, None]
    def as_condition(t):
        t = torch.as_tensor(t)
        return (t[:, None] if t.dim() == 1 else t).float()

    def width(t):
        return t.shape[1] if t.dim() == 2 else -1

    if is_pair(c):
        if len(c) != 2:
            raise ValueError(f"estimate_mi: c must be a tensor (N, k) or a pair (c_x, c_y) of two tensors, "
                             f"got a {type(c).__name__} of length {len(c)}")
        c = (as_condition(c[0]), as_condition(c[1]))
        c_dim: int | tuple[int, int] = (width(c[0]), width(c[1]))
    elif c is not None:
        c = as_condition(c)
        c_dim = width(c)
    else:
        c_dim = 0
    x, y = x.float(), y.float()
    pair = check_inputs(x, y, c, width(x), width(y), c_dim, "estimate_mi")
    if negatives is None:
        negatives = "same_condition" if c is not None else "batch"
    if critic is None:
        critic = default_critic(method)
    n = x.shape[0]
    if batch_size > n:
        raise ValueError(f"batch_size ({batch_size}) must not exceed the number of samples ({n})")
    if train_batch_size is None:
        train_batch_size = default_train_batch(method, critic, batch_size, n)
    if (not isinstance(train_batch_size, int) or isinstance(train_batch_size, bool)
            or not 2 <= train_batch_size <= n):
        raise ValueError(f"train_batch_size must be an integer in [2, {n}] (the number of samples), "
                         f"got {train_batch_size!r}")
    kwargs: dict = {"negatives": negatives, "input_map": input_map}
    if method != "club":
        if critic_kwargs is None and isinstance(critic, str):
            critic_kwargs = default_critic_kwargs(critic)
        kwargs.update(critic=critic, critic_kwargs=critic_kwargs, condition_on=condition_on)
    else:
        kwargs.update(q=club_q, hidden_dim=club_hidden_dim)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        est = build_estimator(method, x.shape[1], y.shape[1], c_dim, **kwargs)
    if standardize:
        est.fit_standardization(x, y)
    avg = averaged(est, ema)
    gen = torch.Generator().manual_seed(seed)
    groups = None
    if negatives == "same_condition":
        _, inverse = torch.unique(torch.cat(pair, dim=1) if is_pair(c) else c, dim=0, return_inverse=True)
        groups = [torch.nonzero(inverse == k).squeeze(1) for k in range(int(inverse.max()) + 1)]
    sample = _BatchSampler(n, batch_size, gen, groups)

    def take(idx):
        if c is None:
            return None
        return (c[0][idx], c[1][idx]) if is_pair(c) else c[idx]

    opt = torch.optim.Adam(est.parameters(), lr=lr)
    history: list[float] = []
    est.train()
    bar = None
    if progress:
        from rich.progress import Progress

        bar = Progress(transient=True)
        bar.start()
        task = bar.add_task(f"estimate_mi[{method}]", total=steps)
    try:
        for _ in range(steps):
            idx = sample(train_batch_size)
            cb = take(idx)
            loss, vals = est.loss_and_estimates(x[idx], y[idx], cb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if avg is not None:
                avg.update_parameters(est)
            history.append(float(vals[est.primary].detach()))
            if bar is not None:
                bar.advance(task)
    finally:
        if bar is not None:
            bar.stop()
    if avg is not None and steps > 0:
        est = avg.module
    est.eval()
    vals_eval = []
    with torch.no_grad():
        for _ in range(eval_batches):
            idx = sample()
            vals_eval.append(float(est(x[idx], y[idx], take(idx))))
    t = torch.tensor(vals_eval, dtype=torch.float64)
    stderr = float(t.std() / math.sqrt(len(t))) if len(t) > 1 else float("nan")
    dead, sat = float("nan"), None
    if c is None:  # the diagnostics evaluate unconditional estimators (the conditional ones need c per batch)
        from mmib.info.diagnostics import dead_unit_fraction, saturation

        rows = torch.randperm(n, generator=gen)[:1024]
        dead = dead_unit_fraction(est, x[rows], y[rows], batch_size)[0]
        sat = saturation(est, x[rows], y[rows], batch_size)
    return MIEstimateResult(float(t.mean()), stderr, method, steps, batch_size, history, dead, sat)
