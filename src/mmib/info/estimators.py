"""Trainable neural estimators of I(X;Y) and I(X;Y|C) (:func:`~mmib.info.estimate.estimate_mi` trains one on samples).

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
from mmib.info.conditioning import (
    CONDITION_ON,
    NEGATIVES,
    Condition,
    c_widths,
    check_c_dim,
    check_inputs,
    condition_mask,
    is_pair,
    same_condition_mask,
)
from mmib.info.critics import Critic, MonotoneMap, build_critic, mlp

#: the ``input_map`` values of the estimators
INPUT_MAPS = (None, "monotone")


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
        input_map: ``None`` or ``"monotone"``: a learned increasing map of every coordinate of ``x`` and ``y``
            (:class:`~mmib.info.critics.MonotoneMap`, after the standardization, before the critic; ``c`` is not
            mapped). The MI is unchanged by such maps; they let the critic undo a monotone distortion of each
            coordinate (the validation's cubic rows).

    :meth:`fit_standardization` makes the estimator standardize ``x`` and ``y`` per coordinate before the critic
    (identity until called; :func:`estimate_mi` calls it by default).
    """

    #: the key of :meth:`estimates` that :meth:`forward` returns
    primary = ""
    #: how much larger Adam's steps on the ``input_map="monotone"`` maps are than on the critic
    #: (:class:`~mmib.info.critics.MonotoneMap` ``lr_scale``; measured in ``docs/guide/information.md``)
    input_map_lr_scale = 30.0

    def __init__(self, x_dim: int, y_dim: int, c_dim: int = 0, critic: str | Critic = "concat",
                 critic_kwargs: dict | None = None, condition_on: str = "both", negatives: str = "batch",
                 input_map: str | None = None):
        super().__init__()
        if input_map not in INPUT_MAPS:
            raise ValueError(f"input_map must be one of {INPUT_MAPS}, got {input_map!r}")
        for name, v in (("x_dim", x_dim), ("y_dim", y_dim)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        c_dim = check_c_dim(c_dim)
        if condition_on not in CONDITION_ON:
            raise ValueError(f"condition_on must be one of {CONDITION_ON}, got {condition_on!r}")
        if not isinstance(c_dim, int) and condition_on != "both":
            raise ValueError(f"c_dim={c_dim} (per-side conditioning (c_x, c_y)) needs condition_on='both', "
                             f"got condition_on={condition_on!r}")
        if negatives not in NEGATIVES:
            raise ValueError(f"negatives must be one of {NEGATIVES}, got {negatives!r}")
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
        self.input_map = input_map
        if input_map == "monotone":  # deterministic initialization: the critic's is unchanged
            self.x_map = MonotoneMap(x_dim, lr_scale=self.input_map_lr_scale)
            self.y_map = MonotoneMap(y_dim, lr_scale=self.input_map_lr_scale)

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

    def critic_inputs(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What the critic sees: the standardized ``x``, ``y``, through the learned monotone maps if any."""
        x, y = self.standardize(x, y)
        if self.input_map == "monotone":
            x, y = self.x_map(x), self.y_map(y)
        return x, y

    def _critic_dims(self) -> tuple[int, int]:
        kx, ky = c_widths(self.c_dim)
        return self.x_dim + kx, self.y_dim + (ky if self.condition_on == "both" else 0)

    def _check(self, x, y, c) -> tuple[torch.Tensor, torch.Tensor] | None:
        who = type(self).__name__
        if is_pair(c) and self.condition_on != "both":
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
        x, y = self.critic_inputs(x, y)
        if pair is not None:
            x = torch.cat([x, pair[0]], dim=1)
            if self.condition_on == "both":
                y = torch.cat([y, pair[1]], dim=1)
        s = self.critic(x, y)
        mask = condition_mask(c, pair) if self.negatives == "same_condition" else None
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
    #: smaller steps on the input maps than the critics': at 30× a tenth of q's ReLU units died at d = 200
    input_map_lr_scale = 10.0

    def __init__(self, x_dim: int, y_dim: int, c_dim: int = 0, hidden_dim: int = 256, negatives: str = "batch",
                 q: str = "mlp", input_map: str | None = None, **_ignored):
        self._hidden_dim = hidden_dim
        if q not in CLUB_Q:
            raise ValueError(f"CLUBEstimator: q must be one of {CLUB_Q}, got {q!r}")
        self.q = q
        if not isinstance(c_dim, int):
            raise ValueError(f"CLUBEstimator: c_dim must be an integer (q(y | [x, c]) conditions only x; per-side "
                             f"conditioning needs a critic-based estimator), got {c_dim!r}")
        super().__init__(x_dim, y_dim, c_dim, critic="bilinear", condition_on="x", negatives=negatives,
                         input_map=input_map)

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
        if is_pair(c):
            raise ValueError("CLUBEstimator: c must be a single tensor (q(y | [x, c]) conditions only x); per-side "
                             "c=(c_x, c_y) needs a critic-based estimator (infonce, nwj, mine, nce_club)")
        self._check(x, y, c)
        x, y = self.critic_inputs(x, y)
        xin = x if c is None else torch.cat([x, c], dim=1)
        return self.critic.mu(xin), self.critic.logvar(xin), y  # (N, d) each; y standardized (and mapped)

    def _log_jacobian(self, y: torch.Tensor) -> torch.Tensor | float:
        """log |dφ(y)/dy| per row with ``input_map="monotone"`` (0 otherwise): q(y|x) is then the density of the
        flow ``φ(y) ~ N(μ(x), σ²(x))``, trained by maximum likelihood; the CLUB estimate is unchanged by it (the
        term is the same for a y paired with its own x and with the others)."""
        if self.input_map != "monotone":
            return 0.0
        return self.y_map.log_derivative((y - self.y_loc) / self.y_scale)

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
        return -(lq.diagonal() + self._log_jacobian(y)).mean(), {"club": club_upper_bound(lq, mask)}

    def learning_loss(self, x, y, c=None) -> torch.Tensor:
        """Negative log-likelihood of q on the positive pairs (the diagonal only: O(N d), no N×N matrix)."""
        mu, logvar, ym = self._gaussian(x, y, c)
        return -(self._log_q_paired(mu, logvar, ym) + self._log_jacobian(y)).mean()


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
