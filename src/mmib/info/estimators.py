"""Trainable neural estimators of I(X;Y) and I(X;Y|C), and :func:`estimate_mi`.

Each estimator is an ``nn.Module``:

- ``forward(x, y, c=None)`` returns its estimate on one batch as a differentiable scalar tensor (nats);
- ``learning_loss(x, y, c=None)`` is what its own parameters minimize (``-forward`` for the lower bounds; the
  bias-corrected surrogate for MINE; the negative log-likelihood of ``q(y|x)`` for CLUB; ``-InfoNCE`` for NCE-CLUB);
- ``estimates(x, y, c=None)`` returns every value the estimator can report from one evaluation (NCE-CLUB also
  reports the InfoNCE of its critic and both marginal-term variants).

**Conditioning** (FactorCL §3.1 Eqs. 13–16, App. D.1; spec A.3.3–A.3.4): a conditioning variable ``c`` (one-hot
labels, augmented views, ...) of width ``c_dim`` is concatenated to the critic's inputs: ``f([x, c], [y, c])``
(``condition_on="both"``, the paper's text) or ``f([x, c], y)`` (``condition_on="x"``, FactorCL-SUP's code).
Which negatives are used decides what is estimated:

- ``negatives="same_condition"``: only in-batch ``y_j`` with ``c_j == c_i`` (exact equality of the rows) are
  candidates, i.e. negatives from ``p(y | c)`` as FactorCL Eq. 13 defines it. This estimates I(X;Y|C). It needs
  several samples per conditioning value in a batch: discrete labels, or data drawn in groups sharing ``c``
  (:func:`mmib.info.conditional_gaussians` with ``samples_per_condition``).
- ``negatives="batch"``: every in-batch ``y_j`` is a candidate (FactorCL's released code). Then the bound is on
  I([X,C]; [Y,C]) (or I([X,C]; Y)), which is >= I(X;Y|C); for continuous ``c`` it saturates at ``log N``.

**Per-side conditioning** (FactorCL-SSL, spec A.3.4: ``f([x1, x1'], [x2, x2'])``): pass ``c=(c_x, c_y)``, a pair of
tensors; ``c_x`` is concatenated to ``x`` and ``c_y`` to ``y``, i.e. ``f([x, c_x], [y, c_y])``. Build the estimator
with ``c_dim=(width of c_x, width of c_y)`` (or an integer when both widths are equal). A single tensor ``c`` is the
pair ``(c, c)``: same scores, same mask, same estimates. Per-side conditioning needs ``condition_on="both"`` (with
``"x"`` there is no ``y`` side to condition) and is not available for CLUB, whose ``q(y | [x, c])`` conditions only
``x``. With ``negatives="same_condition"`` the conditioning variable is the *joint* ``C = (C_x, C_y)``: ``y_j`` is a
candidate for ``x_i`` only if ``c_x`` **and** ``c_y`` of rows ``i`` and ``j`` are both equal, i.e. negatives from
``p(y | c_x, c_y)`` as spec A.3.4 writes ``x2- ~ p(x2 | x1', x2')``; for continuous augmented views no two rows
share a value, so use ``negatives="batch"`` (FactorCL's code) and read the estimate as I([X,C_x]; [Y,C_y]).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from mmib.errors import UnknownNameError
from mmib.info.bounds import (
    club_upper_bound,
    infonce_lower_bound,
    mine_lower_bound,
    nce_club_upper_bound,
    nwj_lower_bound,
)
from mmib.info.critics import Critic, build_critic, mlp

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
DEFAULT_HIDDEN_DIM = 512
DEFAULT_EMBED_DIM = 256
DEFAULT_LR = 1e-3
DEFAULT_CLUB_Q = "mlp"
DEFAULT_TRAIN_BATCH = 512
DEFAULT_EMA = 0.99
DEFAULT_STANDARDIZE = True


def default_critic_kwargs(critic, hidden_dim: int = DEFAULT_HIDDEN_DIM) -> dict:
    """The keyword arguments :func:`estimate_mi` and ``mmib info validate`` give the critic ``critic``."""
    if critic == "separable":
        return {"hidden_dim": hidden_dim, "embed_dim": DEFAULT_EMBED_DIM, "linear_skip": True}
    if critic == "concat":
        return {"hidden_dim": hidden_dim}
    return {}


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


_NEGATIVES = ("batch", "same_condition")
_CONDITION_ON = ("both", "x")


def _shape(t) -> str:
    return str(tuple(t.shape)) if isinstance(t, torch.Tensor) else type(t).__name__


#: a conditioning argument: a tensor ``c`` (appended to both sides) or a pair ``(c_x, c_y)`` (one per side)
Condition = torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None


def _is_pair(c) -> bool:
    return isinstance(c, (tuple, list))


def c_widths(c_dim: int | tuple[int, int]) -> tuple[int, int]:
    """``c_dim`` (an integer, or a pair for per-side conditioning) as ``(width of c_x, width of c_y)``."""
    return (c_dim, c_dim) if isinstance(c_dim, int) else (int(c_dim[0]), int(c_dim[1]))


def _check_c_dim(c_dim) -> int | tuple[int, int]:
    if isinstance(c_dim, int) and not isinstance(c_dim, bool) and c_dim >= 0:
        return c_dim
    if (_is_pair(c_dim) and len(c_dim) == 2
            and all(isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in c_dim)):
        return (c_dim[0], c_dim[1])
    raise ValueError(f"c_dim must be an integer >= 0 or a pair (width of c_x, width of c_y) of integers >= 1, "
                     f"got {c_dim!r}")


def check_inputs(x: torch.Tensor, y: torch.Tensor, c: Condition, x_dim: int, y_dim: int,
                 c_dim: int | tuple[int, int], who: str) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Check shapes and finiteness of an estimator's inputs; errors name the argument and what was expected.

    ``c`` is ``None``, a tensor (both sides) or a pair ``(c_x, c_y)``; ``c_dim`` an integer or a pair of widths.
    Returns the conditioning as the pair ``(c_x, c_y)`` (``(c, c)`` for a single tensor), or ``None``.
    """
    for name, t, d in (("x", x, x_dim), ("y", y, y_dim)):
        if not isinstance(t, torch.Tensor) or t.dim() != 2 or t.shape[1] != d:
            raise ValueError(f"{who}: {name} must be a 2-D tensor (N, {d if d >= 0 else 'k'}), got {_shape(t)}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{who}: x and y must have the same number of rows (paired samples), "
                         f"got {x.shape[0]} and {y.shape[0]}")
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"{who}: a batch needs at least 2 samples, got {n}")
    kx, ky = c_widths(c_dim)
    if kx == 0 and ky == 0:
        if c is not None:
            raise ValueError(f"{who}: got c but the estimator was built with c_dim=0; pass c_dim=<width of c>")
        pair = None
    elif c is None:
        raise ValueError(f"{who}: the estimator was built with c_dim={c_dim}; pass the conditioning tensor c")
    elif _is_pair(c):
        if len(c) != 2:
            raise ValueError(f"{who}: c must be a tensor (N, c_dim) or a pair (c_x, c_y) of two tensors, "
                             f"got a {type(c).__name__} of length {len(c)}")
        pair = (c[0], c[1])
    else:
        if kx != ky:
            raise ValueError(f"{who}: the estimator was built with c_dim={c_dim} (per-side); pass c as a pair "
                             f"(c_x, c_y) of shapes ({n}, {kx}) and ({n}, {ky}), got one tensor {_shape(c)}")
        pair = (c, c)
    if pair is not None:
        names = ("c", "c") if not _is_pair(c) else ("c_x", "c_y")
        for name, t, d in ((names[0], pair[0], kx), (names[1], pair[1], ky)):
            if not isinstance(t, torch.Tensor) or t.dim() != 2 or t.shape != (n, d):
                raise ValueError(f"{who}: {name} must be a 2-D tensor ({n}, {d if d >= 0 else 'k'}), "
                                 f"got {_shape(t)}")
    checks = [("x", x), ("y", y)]
    if pair is not None:
        checks += [("c", pair[0])] if not _is_pair(c) else [("c_x", pair[0]), ("c_y", pair[1])]
    for name, t in checks:
        if not torch.isfinite(t).all():
            raise ValueError(f"{who}: {name} contains NaN or inf")
    return pair


def _condition_mask(c: Condition, pair: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """The same-condition mask of a checked conditioning argument: by ``c``, or by the joint rows ``(c_x, c_y)``."""
    return same_condition_mask(torch.cat(pair, dim=1) if _is_pair(c) else c)


def same_condition_mask(c: torch.Tensor) -> torch.Tensor:
    """``mask[i, j] = (c_i == c_j)`` row-wise (exact equality): negatives drawn from ``p(y | c_i)``.

    For per-side conditioning pass ``torch.cat([c_x, c_y], 1)`` (the joint conditioning variable)."""
    return (c[:, None, :] == c[None, :, :]).all(dim=-1)


class MIEstimator(nn.Module):
    """Base class of the critic-based estimators (see the module docstring for conditioning).

    Args:
        x_dim, y_dim: sizes of ``x`` and ``y``.
        c_dim: size of the conditioning variable (0: unconditional), or a pair ``(width of c_x, width of c_y)``
            for per-side conditioning ``c=(c_x, c_y)`` (needs ``condition_on="both"``).
        critic: ``"concat"`` (default, FactorCL App. D.1), ``"separable"``, ``"bilinear"`` or a
            :class:`~mmib.info.critics.Critic` whose input sizes include ``c``.
        critic_kwargs: keyword arguments of the critic class (e.g. ``hidden_dim``).
        condition_on: ``"both"`` (``f([x,c],[y,c])``) or ``"x"`` (``f([x,c], y)``).
        negatives: ``"same_condition"`` (estimates I(X;Y|C)) or ``"batch"`` (FactorCL's code).

    :meth:`fit_standardization` makes the estimator standardize ``x`` and ``y`` per coordinate before the critic
    (identity until called; :func:`estimate_mi` calls it by default).
    """

    #: the key of :meth:`estimates` that :meth:`forward` returns
    primary = ""

    def __init__(self, x_dim: int, y_dim: int, c_dim: int = 0, critic: str | Critic = "concat",
                 critic_kwargs: dict | None = None, condition_on: str = "both", negatives: str = "batch"):
        super().__init__()
        for name, v in (("x_dim", x_dim), ("y_dim", y_dim)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        c_dim = _check_c_dim(c_dim)
        if condition_on not in _CONDITION_ON:
            raise ValueError(f"condition_on must be one of {_CONDITION_ON}, got {condition_on!r}")
        if not isinstance(c_dim, int) and condition_on != "both":
            raise ValueError(f"c_dim={c_dim} (per-side conditioning (c_x, c_y)) needs condition_on='both', "
                             f"got condition_on={condition_on!r}")
        if negatives not in _NEGATIVES:
            raise ValueError(f"negatives must be one of {_NEGATIVES}, got {negatives!r}")
        if negatives == "same_condition" and c_dim == 0:
            raise ValueError("negatives='same_condition' needs a conditioning variable: set c_dim > 0")
        self.x_dim, self.y_dim, self.c_dim = x_dim, y_dim, c_dim
        self.condition_on, self.negatives = condition_on, negatives
        # per-coordinate standardization of x and y (identity until fit_standardization; not saved in state_dict)
        for name, d in (("x_loc", x_dim), ("y_loc", y_dim)):
            self.register_buffer(name, torch.zeros(d), persistent=False)
        for name, d in (("x_scale", x_dim), ("y_scale", y_dim)):
            self.register_buffer(name, torch.ones(d), persistent=False)
        self.critic = self._build_critic(critic, critic_kwargs or {})

    @torch.no_grad()
    def fit_standardization(self, x: torch.Tensor, y: torch.Tensor) -> MIEstimator:
        """Standardize every coordinate of ``x`` and ``y`` by the mean and standard deviation of these samples
        before the critic sees them (an affine map per coordinate: the MI is unchanged; a constant coordinate is
        only centred). The conditioning variable is not touched. Returns ``self``."""
        check_inputs(x, y, None, self.x_dim, self.y_dim, 0, type(self).__name__)
        for t, loc, scale in ((x, self.x_loc, self.x_scale), (y, self.y_loc, self.y_scale)):
            t = t.to(loc.dtype)
            sd = t.std(0)
            loc.copy_(t.mean(0))
            scale.copy_(torch.where(sd > 1e-8, sd, torch.ones_like(sd)))
        return self

    def standardize(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` and ``y`` with the fitted standardization applied (the identity unless it was fitted)."""
        return (x - self.x_loc) / self.x_scale, (y - self.y_loc) / self.y_scale

    def _critic_dims(self) -> tuple[int, int]:
        kx, ky = c_widths(self.c_dim)
        return self.x_dim + kx, self.y_dim + (ky if self.condition_on == "both" else 0)

    def _check(self, x, y, c) -> tuple[torch.Tensor, torch.Tensor] | None:
        who = type(self).__name__
        if _is_pair(c) and self.condition_on != "both":
            raise ValueError(f"{who}: c=(c_x, c_y) (per-side conditioning) needs condition_on='both'; "
                             f"with condition_on={self.condition_on!r} pass a single tensor c")
        return check_inputs(x, y, c, self.x_dim, self.y_dim, self.c_dim, who)

    def _build_critic(self, critic, kwargs) -> nn.Module:
        return build_critic(critic, *self._critic_dims(), **kwargs)

    def scores(self, x: torch.Tensor, y: torch.Tensor, c: Condition = None
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The critic's score matrix and the candidate mask (or ``None``).

        ``scores[i, j] = f([x_i, c_i], [y_j, c_j])`` for a tensor ``c`` (``f([x_i, c_i], y_j)`` with
        ``condition_on="x"``), ``f([x_i, c_x_i], [y_j, c_y_j])`` for a pair ``c=(c_x, c_y)``.
        """
        pair = self._check(x, y, c)
        x, y = self.standardize(x, y)
        if pair is not None:
            x = torch.cat([x, pair[0]], dim=1)
            if self.condition_on == "both":
                y = torch.cat([y, pair[1]], dim=1)
        s = self.critic(x, y)
        mask = _condition_mask(c, pair) if self.negatives == "same_condition" else None
        return s, mask

    def loss_and_estimates(self, x, y, c=None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The learning loss and every estimate, from one evaluation of the critic."""
        raise NotImplementedError

    def estimates(self, x: torch.Tensor, y: torch.Tensor, c: Condition = None) -> dict[str, torch.Tensor]:
        return self.loss_and_estimates(x, y, c)[1]

    def forward(self, x: torch.Tensor, y: torch.Tensor, c: Condition = None) -> torch.Tensor:
        return self.estimates(x, y, c)[self.primary]

    def learning_loss(self, x: torch.Tensor, y: torch.Tensor, c: Condition = None) -> torch.Tensor:
        return self.loss_and_estimates(x, y, c)[0]


class InfoNCEEstimator(MIEstimator):
    """InfoNCE lower bound with the ``+ log N`` convention (van den Oord et al. 2018; FactorCL Eq. 10, spec A.3.1):
    the estimate never exceeds ``log N`` (N = batch size, or the number of same-condition candidates).

    Example:
        >>> est = InfoNCEEstimator(4, 4, critic="separable")
        >>> est(torch.randn(16, 4), torch.randn(16, 4)).shape
        torch.Size([])
    """

    primary = "infonce"

    def loss_and_estimates(self, x, y, c=None):
        s, mask = self.scores(x, y, c)
        v = infonce_lower_bound(s, mask)
        return -v, {"infonce": v}


class NWJEstimator(MIEstimator):
    """NWJ lower bound (Nguyen et al. 2010; Poole et al. 2019 Eq. 6): unbiased minibatch gradients, high variance
    when the MI is large (the ``e^f`` term)."""

    primary = "nwj"

    def loss_and_estimates(self, x, y, c=None):
        s, mask = self.scores(x, y, c)
        v = nwj_lower_bound(s, mask)
        return -v, {"nwj": v}


class MINEEstimator(MIEstimator):
    """MINE (Belghazi et al. 2018): the Donsker–Varadhan bound (Eq. 10) as the estimate, trained with the
    moving-average bias correction of §3.2: the gradient of ``log E_marg[e^T]`` is ``∇E_marg[e^T] / E_marg[e^T]``,
    and the denominator is replaced by an exponential moving average (rate ``ma_rate``) of its minibatch values.

    ``learning_loss`` returns ``-(mean T_joint - E_batch[e^T] / ma)``, whose gradient is the corrected one; its value
    is not an MI estimate. The moving average is kept in log space and updated (without gradient) on each call of
    ``learning_loss`` in training mode.

    OMIB (spec §3.7) estimates H(v) as I(v; v) with MINE: for continuous v that quantity is infinite and the
    finite number returned depends on the critic and the training budget.
    """

    primary = "mine"

    def __init__(self, *args, ma_rate: float = 0.01, **kwargs):
        super().__init__(*args, **kwargs)
        if not (isinstance(ma_rate, (int, float)) and 0.0 < ma_rate <= 1.0):
            raise ValueError(f"ma_rate must lie in (0, 1], got {ma_rate!r}")
        self.ma_rate = float(ma_rate)
        self.register_buffer("log_ma", torch.tensor(float("nan")))

    def loss_and_estimates(self, x, y, c=None):
        s, mask = self.scores(x, y, c)
        v = mine_lower_bound(s, mask)
        n = s.shape[0]
        marg = ~torch.eye(n, dtype=torch.bool, device=s.device)
        if mask is not None:
            marg = marg & mask
        lme = torch.logsumexp(s.masked_fill(~marg, float("-inf")).reshape(-1), 0) - math.log(int(marg.sum()))
        if self.training:
            with torch.no_grad():
                if torch.isnan(self.log_ma):
                    self.log_ma.copy_(lme)
                else:
                    a = self.ma_rate
                    self.log_ma.copy_(torch.logaddexp(self.log_ma + math.log1p(-a) if a < 1 else
                                                      torch.tensor(-math.inf), lme + math.log(a)))
        log_ma = lme.detach() if torch.isnan(self.log_ma) else self.log_ma
        loss = -(s.diagonal().mean() - torch.exp(lme - log_ma))
        return loss, {"mine": v}


#: the variational families of CLUB's q (:class:`CLUBEstimator`)
CLUB_Q = ("mlp", "linear")


class _ConstantLogVar(nn.Module):
    """An input-independent learned log-variance vector, broadcast to the batch (the linear-Gaussian CLUB q)."""

    def __init__(self, dim: int):
        super().__init__()
        self.value = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.value.expand(x.shape[0], -1)


class CLUBEstimator(MIEstimator):
    """CLUB with a Gaussian variational ``q(y | x) = N(μ(x), diag σ²(x))`` (Cheng et al. ICML 2020, Eq. 14 and
    their released ``CLUB`` module: μ and log σ² from two ReLU MLPs, log σ² through ``tanh``).

    ``learning_loss`` = negative log-likelihood of ``q`` on the positive pairs (Cheng et al. Alg. 1);
    ``forward`` = ``mean_i log q(y_i|x_i) - mean_{i,j} log q(y_j|x_i)`` (:func:`~mmib.info.bounds.club_upper_bound`).
    With ``c``, ``q(y | [x, c])``; per-side ``c=(c_x, c_y)`` is refused (``q`` conditions only ``x``). The ``critic``
    arguments are not used (the variational network is the critic).

    Args:
        hidden_dim: width of the hidden layer of the μ and log σ² networks (``q="mlp"``).
        q: ``"mlp"`` (Cheng et al.'s module: μ(x), log σ²(x) from one-hidden-layer ReLU MLPs, log σ² through tanh)
            or ``"linear"``: a linear-Gaussian ``q(y|x) = N(W x + b, diag σ²)`` with a learned, input-independent
            log σ² (the exact family of ``p(y|x)`` for jointly Gaussian data; no ReLU unit that can die, no tanh
            that can saturate).
    """

    primary = "club"

    def __init__(self, x_dim: int, y_dim: int, c_dim: int = 0, hidden_dim: int = 256, negatives: str = "batch",
                 q: str = "mlp", **_ignored):
        self._hidden_dim = hidden_dim
        if q not in CLUB_Q:
            raise ValueError(f"CLUBEstimator: q must be one of {CLUB_Q}, got {q!r}")
        self.q = q
        if not isinstance(c_dim, int):
            raise ValueError(f"CLUBEstimator: c_dim must be an integer (q(y | [x, c]) conditions only x; per-side "
                             f"conditioning needs a critic-based estimator), got {c_dim!r}")
        super().__init__(x_dim, y_dim, c_dim, critic="bilinear", condition_on="x", negatives=negatives)

    def _build_critic(self, critic, kwargs) -> nn.Module:
        in_dim = self.x_dim + self.c_dim
        mod = nn.Module()
        if self.q == "linear":
            mod.mu = nn.Linear(in_dim, self.y_dim)
            mod.logvar = _ConstantLogVar(self.y_dim)
            return mod
        mod.mu = mlp(in_dim, self._hidden_dim, self.y_dim, 1)
        mod.logvar = nn.Sequential(mlp(in_dim, self._hidden_dim, self.y_dim, 1), nn.Tanh())
        return mod

    def _gaussian(self, x, y, c):
        if _is_pair(c):
            raise ValueError("CLUBEstimator: c must be a single tensor (q(y | [x, c]) conditions only x); per-side "
                             "c=(c_x, c_y) needs a critic-based estimator (infonce, nwj, mine, nce_club)")
        self._check(x, y, c)
        x, y = self.standardize(x, y)
        xin = x if c is None else torch.cat([x, c], dim=1)
        return self.critic.mu(xin), self.critic.logvar(xin), y  # (N, d) each; y standardized

    @staticmethod
    def _log_q_paired(mu, logvar, y) -> torch.Tensor:
        """log q(y_i | x_i) of the paired rows, from the differences directly (O(N d))."""
        return -0.5 * ((y - mu).pow(2) * torch.exp(-logvar) + logvar + math.log(2 * math.pi)).sum(-1)

    def log_q(self, x, y, c=None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``log_q[i, j] = log q(y_j | x_i[, c_i])`` (full Gaussian log-density, nats) and the candidate mask.

        Computed with two matmuls — Σ_d (y_jd − μ_id)²/σ²_id = (1/σ²) (y²)ᵀ − 2 (μ/σ²) yᵀ + Σ_d μ²/σ² — instead of
        an (N, N, d) tensor of differences; the diagonal (the positive pairs) from the differences directly, so
        that no cancellation touches the pairs the critic is trained on.
        """
        mu, logvar, y = self._gaussian(x, y, c)
        inv_var = torch.exp(-logvar)
        quad = inv_var @ (y * y).T - 2.0 * (mu * inv_var) @ y.T + (mu * mu * inv_var).sum(-1, keepdim=True)
        lq = -0.5 * (quad + (logvar.sum(-1, keepdim=True) + self.y_dim * math.log(2 * math.pi)))
        lq = torch.diagonal_scatter(lq, self._log_q_paired(mu, logvar, y))
        mask = same_condition_mask(c) if self.negatives == "same_condition" else None
        return lq, mask

    def loss_and_estimates(self, x, y, c=None):
        lq, mask = self.log_q(x, y, c)
        return -lq.diagonal().mean(), {"club": club_upper_bound(lq, mask)}

    def learning_loss(self, x, y, c=None) -> torch.Tensor:
        """Negative log-likelihood of q on the positive pairs (the diagonal only: O(N d), no N×N matrix)."""
        mu, logvar, y = self._gaussian(x, y, c)
        return -self._log_q_paired(mu, logvar, y).mean()


class NCECLUBEstimator(MIEstimator):
    """NCE-CLUB upper bound (FactorCL Eq. 11 / 54, Thm 2; spec A.3.2): the critic is trained with InfoNCE only
    (``learning_loss = -InfoNCE``) and plugged into the CLUB form. ``estimates`` also returns ``infonce`` (the lower
    bound from the same critic, FactorCL Eq. 12's sandwich) and both marginal-term variants.

    Args:
        include_diagonal: ``True`` (FactorCL's code, exactly shift-invariant): the marginal term averages all N²
            pairs; ``False``: only the i≠j pairs. Decides what :meth:`forward` returns.
    """

    primary = "nce_club"

    def __init__(self, *args, include_diagonal: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.include_diagonal = bool(include_diagonal)
        if not self.include_diagonal:
            self.primary = "nce_club_offdiag"

    def loss_and_estimates(self, x, y, c=None):
        s, mask = self.scores(x, y, c)
        nce = infonce_lower_bound(s, mask)
        out = {
            "nce_club": nce_club_upper_bound(s, mask, include_diagonal=True),
            "nce_club_offdiag": nce_club_upper_bound(s, mask, include_diagonal=False),
            "infonce": nce,
        }
        return -nce, out


#: estimator classes by ``method`` name (``nce_club_offdiag`` is NCE-CLUB with ``include_diagonal=False``)
ESTIMATORS: dict[str, Callable[..., MIEstimator]] = {
    "infonce": InfoNCEEstimator,
    "nwj": NWJEstimator,
    "mine": MINEEstimator,
    "club": CLUBEstimator,
    "nce_club": NCECLUBEstimator,
    "nce_club_offdiag": lambda *a, **k: NCECLUBEstimator(*a, include_diagonal=False, **k),
}


def build_estimator(method: str, x_dim: int, y_dim: int, c_dim: int = 0, **kwargs) -> MIEstimator:
    """An estimator by name (see :data:`ESTIMATORS`)."""
    if method not in ESTIMATORS:
        raise UnknownNameError("MI estimator", str(method), list(ESTIMATORS))
    return ESTIMATORS[method](x_dim, y_dim, c_dim, **kwargs)


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
    steps: int = 1000,
    batch_size: int = 64,
    seed: int = 0,
    critic: str = DEFAULT_CRITIC,
    critic_kwargs: dict | None = None,
    lr: float = DEFAULT_LR,
    club_q: str = DEFAULT_CLUB_Q,
    club_hidden_dim: int = DEFAULT_HIDDEN_DIM,
    negatives: str | None = None,
    condition_on: str = "both",
    eval_batches: int = 50,
    progress: bool = False,
    train_batch_size: int | None = None,
    ema: float = DEFAULT_EMA,
    standardize: bool = DEFAULT_STANDARDIZE,
) -> MIEstimateResult:
    """Train an estimator on ``(x, y[, c])`` and return its estimate of I(X;Y) or I(X;Y|C) in nats.

    Training: ``steps`` Adam steps (learning rate ``lr``) on random minibatches of ``train_batch_size`` rows
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

    The defaults (:data:`DEFAULT_CRITIC` of width :data:`DEFAULT_HIDDEN_DIM`, :data:`DEFAULT_LR`, CLUB's q) are those
    of ``mmib info validate``. The result carries two diagnostics of the trained network on (up to) 1,024 rows
    drawn after training: the fraction of dead ReLU units and the saturation (:mod:`mmib.info.diagnostics`).

    Args:
        method: ``infonce``, ``nwj``, ``mine``, ``club``, ``nce_club``, ``nce_club_offdiag``.
        critic, critic_kwargs: the critic of the critic-based methods (``critic_kwargs`` default:
            :func:`default_critic_kwargs`: ``separable`` of width 512, 256-dimensional embeddings and a linear
            skip; ``concat`` of width 512).
        club_q, club_hidden_dim: CLUB's variational family (``"mlp"`` or ``"linear"``) and MLP width.
        train_batch_size: rows per training step (``None``: the default above). The optimal critic does not
            depend on it; its sample noise does (measured in ``docs/guide/information.md``).
        ema: decay of the moving average of the weights used for the estimate (0: the last weights).
        standardize: standardize every coordinate of ``x`` and ``y`` by its mean and standard deviation over
            all samples before the critic (:meth:`MIEstimator.fit_standardization`; ``c`` is not touched).
        seed: seeds the critic's initialization and the minibatch order (global RNG state is left untouched).

    Raises:
        ValueError: on malformed inputs or arguments; UnknownNameError on an unknown ``method``/``critic``.
    """
    for name, v, lo in (("steps", steps, 0), ("batch_size", batch_size, 2), ("eval_batches", eval_batches, 1)):
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
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

    if _is_pair(c):
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
    n = x.shape[0]
    if batch_size > n:
        raise ValueError(f"batch_size ({batch_size}) must not exceed the number of samples ({n})")
    if train_batch_size is None:
        train_batch_size = default_train_batch(method, critic, batch_size, n)
    if (not isinstance(train_batch_size, int) or isinstance(train_batch_size, bool)
            or not 2 <= train_batch_size <= n):
        raise ValueError(f"train_batch_size must be an integer in [2, {n}] (the number of samples), "
                         f"got {train_batch_size!r}")
    kwargs: dict = {"negatives": negatives}
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
        _, inverse = torch.unique(torch.cat(pair, dim=1) if _is_pair(c) else c, dim=0, return_inverse=True)
        groups = [torch.nonzero(inverse == k).squeeze(1) for k in range(int(inverse.max()) + 1)]
    sample = _BatchSampler(n, batch_size, gen, groups)

    def take(idx):
        if c is None:
            return None
        return (c[0][idx], c[1][idx]) if _is_pair(c) else c[idx]

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
