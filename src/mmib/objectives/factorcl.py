"""FactorCL's objective (Liang, Deng, Ma, Zou, Morency, Salakhutdinov, "Factorized Contrastive Learning: Going
Beyond Multi-view Redundancy", NeurIPS 2023; App. D.1 Eqs. 94–99, Algorithm 3).

Estimators (conventions of the authors' code, pliang279/FactorCL, spec A.3):

* concatenation critic f(a, b) = h([a, b]), h an MLP with a scalar output (App. D.1);
* InfoNCE lower bound with the +log N offset (Eq. 10):
  Î_NCE = (1/N) Σ_i f(a_i, b_i) − (1/N) Σ_i [logsumexp_j f(a_j, b_i) − log N]   (so Î_NCE ≤ log N);
* NCE-CLUB upper bound (Eq. 11) with the same kind of critic, trained only by InfoNCE (Algorithm 3):
  Î_CLUB = (1/N) Σ_i f(a_i, b_i) − (1/N²) Σ_{i,j} f(a_j, b_i)   (all pairs; ``club_off_diagonal`` averages i≠j).
* conditional versions by concatenation of the conditioning variable (label one-hot, or the augmented view's head
  output) to the critic inputs (§3.1, App. D.1).

The six terms (spec A.4, all unit-weighted; loss = −objective):

=============  ====  ===========================================  =============================================
key            sign  SUP                                          SSL
=============  ====  ===========================================  =============================================
``nce``        +     I_NCE(X1; X2)                                I_NCE(X1; X2)
``club_cond``  −     I_NCE-CLUB(X1; X2 | Y)                       I_NCE-CLUB(X1; X2 | X1', X2')
``nce_self1``  +     I_NCE(X1; Y)                                 I_NCE(X1; X1')
``nce_self2``  +     I_NCE(X2; Y)                                 I_NCE(X2; X2')
``club``       −     I_NCE-CLUB(X1; X2)                           I_NCE-CLUB(X1; X2)
``nce_cond``   +     I_NCE(X1; X2 | Y)                            I_NCE(X1; X2 | X1', X2')
=============  ====  ===========================================  =============================================

The critics of the two CLUB terms (φ) are not trained by this loss; :meth:`FactorCLLoss.club_critic_loss` is their
InfoNCE loss (the inner step of Algorithm 3).

The bounds are the shared ones of :mod:`mmib.info.bounds` (one implementation for the library);
:func:`infonce_from_scores` and :func:`nce_club_from_scores` only map FactorCL's layout onto them. The conventions
are the same quantity, not approximately: FactorCL's ``T[i, j] = f(a_j, b_i)`` is ``mmib.info``'s
``scores[i, j] = f(x_i, y_j)`` with ``x := b`` and ``y := a``, so ``mmib.info``'s row softmax over the ``y``
candidates is FactorCL's softmax over ``a_j`` for a fixed ``b_i``; both add ``+ log N``; FactorCL's all-pairs
NCE-CLUB is ``include_diagonal=True`` and ``club_off_diagonal`` is ``include_diagonal=False``. Two behaviours come
with the shared bounds: non-finite scores raise a ``ValueError`` (before: a NaN loss), and a batch of one sample,
which ``mmib.info`` refuses, keeps its value 0 here (InfoNCE and all-pairs NCE-CLUB are identically 0 for N = 1;
the off-diagonal NCE-CLUB has no pairs and raises). Tested against float64 loops.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from mmib.info.bounds import infonce_lower_bound as _infonce_bound
from mmib.info.bounds import nce_club_upper_bound as _nce_club_bound
from mmib.info.critics import ConcatCritic as _InfoConcatCritic
from mmib.objectives.base import LossOutput

#: term key → sign in the objective (maximized), in the order of Eqs. 94–99
FACTORCL_TERMS: dict[str, int] = {"nce": +1, "club_cond": -1, "nce_self1": +1, "nce_self2": +1, "club": -1,
                                  "nce_cond": +1}
CLUB_TERMS = ("club_cond", "club")


class ConcatCritic(nn.Module):
    """Concatenation critic f(a, b) = MLP([a, b]) → scalar (FactorCL App. D.1; code ``mlp(a+b, 512, 1, layers)``) in
    FactorCL's layout: the library's :class:`mmib.info.critics.ConcatCritic` (``x := a``, ``y := b``) with the
    per-row score as :meth:`forward` and :meth:`pairwise` = ``T[i, j] = f(a_j, b_i)``.

    :meth:`pairwise` scores every pair without materializing the N² concatenations: the first linear layer is split
    as W [a, b] = W_a a + W_b b.

    Args:
        a_dim, b_dim: input sizes; hidden: hidden layer sizes (>= 1 layer; default two of 512 as FactorCL's code,
            ``mlp(a+b, 512, 1, layers=1)`` = Linear-ReLU-Linear-ReLU-Linear; the paper's "1-layer MLP"); act: activation.

    Example:
        >>> critic = ConcatCritic(3, 2, hidden=(16,))
        >>> critic.pairwise(torch.randn(5, 3), torch.randn(5, 2)).shape
        torch.Size([5, 5])
    """

    def __init__(self, a_dim: int, b_dim: int, hidden: Sequence[int] = (512, 512), act: str = "relu") -> None:
        super().__init__()
        hidden = [int(h) for h in hidden]
        if not hidden:
            raise ValueError("ConcatCritic: needs at least one hidden layer (a linear critic is additive in a, b "
                             "and cannot estimate mutual information)")
        if a_dim < 1 or b_dim < 1:
            raise ValueError(f"ConcatCritic: input sizes must be >= 1, got {a_dim}, {b_dim}")
        self.a_dim, self.b_dim = int(a_dim), int(b_dim)
        self.critic = _InfoConcatCritic(self.a_dim, self.b_dim, act=act, hidden=hidden)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # checkpoints written before the critic became mmib.info's: first.*, rest.<2k+1>.* (rest began with the
        # activation) -> critic.first.*, critic.rest.<2k>.*
        if prefix + "first.weight" in state_dict:
            for key in [k for k in state_dict if k.startswith(prefix + "first.") or k.startswith(prefix + "rest.")]:
                name = key[len(prefix):]
                if name.startswith("rest."):
                    index, _, param = name[len("rest."):].partition(".")
                    name = f"rest.{int(index) - 1}.{param}"
                state_dict[prefix + "critic." + name] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _check(self, a: torch.Tensor, b: torch.Tensor) -> None:
        if a.dim() != 2 or b.dim() != 2 or a.shape[0] != b.shape[0]:
            raise ValueError(f"ConcatCritic: expected (N, {self.a_dim}) and (N, {self.b_dim}), got "
                             f"{tuple(a.shape)} and {tuple(b.shape)}")
        if a.shape[1] != self.a_dim or b.shape[1] != self.b_dim:
            raise ValueError(f"ConcatCritic: expected feature sizes {self.a_dim} and {self.b_dim}, got "
                             f"{a.shape[1]} and {b.shape[1]}")

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """f(a_i, b_i) for every row i → (N,)."""
        self._check(a, b)
        return self.critic.paired(a, b)

    def pairwise(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """T[i, j] = f(a_j, b_i) → (N, N)."""
        self._check(a, b)
        return self.critic.scores_by_y(a, b)


def _single_sample(t: torch.Tensor) -> bool:
    if not isinstance(t, torch.Tensor) or t.dim() != 2 or t.shape[0] != t.shape[1]:
        got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise ValueError(f"t must be a square 2-D tensor (N, N) with t[i, j] = f(a_j, b_i), got {got}")
    return t.shape[0] == 1


def infonce_from_scores(t: torch.Tensor) -> torch.Tensor:
    """Î_NCE (+log N) from pairwise critic scores T[i, j] = f(a_j, b_i): mean diag − mean_i (lse_j T[i, j] − log N).

    :func:`mmib.info.bounds.infonce_lower_bound` of ``T`` read as ``scores`` of ``(x, y) = (b, a)`` (see the
    module docstring); N = 1 gives 0 (no negatives: log-softmax 0 plus log 1).
    """
    if _single_sample(t):
        return t.sum() * 0.0
    return _infonce_bound(t)


def nce_club_from_scores(t: torch.Tensor, off_diagonal: bool = False) -> torch.Tensor:
    """Î_NCE-CLUB from pairwise scores: mean of the positives − mean over all N² pairs (or the N(N−1) i≠j pairs).

    :func:`mmib.info.bounds.nce_club_upper_bound` with ``include_diagonal = not off_diagonal``; both marginal
    terms are symmetric in ``i, j``, so the layout does not matter. N = 1: 0 (all pairs) or an error (i≠j).
    """
    if _single_sample(t):
        if off_diagonal:
            raise ValueError("NCE-CLUB (off-diagonal): needs N >= 2")
        return t.sum() * 0.0
    return _nce_club_bound(t, include_diagonal=not off_diagonal)


def critic_infonce(critic: ConcatCritic, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """InfoNCE estimate of I(A; B) with the +log N offset (FactorCL Eq. 10, code convention): the critic's scores
    through :func:`mmib.info.bounds.infonce_lower_bound` (see :func:`infonce_from_scores`)."""
    return infonce_from_scores(critic.pairwise(a, b))


def critic_nce_club(critic: ConcatCritic, a: torch.Tensor, b: torch.Tensor, off_diagonal: bool = False) -> torch.Tensor:
    """NCE-CLUB estimate of I(A; B) (FactorCL Eq. 11) with an InfoNCE-trained critic: the critic's scores through
    :func:`mmib.info.bounds.nce_club_upper_bound` (see :func:`nce_club_from_scores`)."""
    return nce_club_from_scores(critic.pairwise(a, b), off_diagonal)


class FactorCLLoss(nn.Module):
    """The FactorCL objective over pre-assembled critic inputs, one critic per term.

    Args:
        dims: ``{term: (a_dim, b_dim)}`` for the six keys of :data:`FACTORCL_TERMS` (the sizes of the critic
            inputs after concatenating the conditioning).
        critic_hidden: hidden sizes of every critic (FactorCL's code: ``[512, 512]``, spec A.12).
        club_off_diagonal: NCE-CLUB marginal term over i≠j pairs instead of all N² pairs.

    ``forward(inputs)``: ``inputs = {term: (a, b)}`` with (N, a_dim), (N, b_dim) tensors. Returns
    ``loss = −Σ_t sign_t · Î_t`` and the terms ``I_<term>`` (estimates, nats) and ``objective``.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> loss_fn = FactorCLLoss({t: (6, 6) for t in FACTORCL_TERMS}, critic_hidden=[16])
        >>> inputs = {t: (torch.randn(8, 6), torch.randn(8, 6)) for t in FACTORCL_TERMS}  # (a, b) of each critic
        >>> out = loss_fn(inputs)
        >>> sorted(out.terms)
        ['I_club', 'I_club_cond', 'I_nce', 'I_nce_cond', 'I_nce_self1', 'I_nce_self2', 'objective']
        >>> signed = sum(sign * out.terms[f"I_{t}"] for t, sign in FACTORCL_TERMS.items())  # +InfoNCE, −NCE-CLUB
        >>> bool(torch.isclose(out.loss, -signed))
        True
    """

    def __init__(self, dims: Mapping[str, tuple[int, int]], critic_hidden: Sequence[int] = (512, 512),
                 club_off_diagonal: bool = False) -> None:
        super().__init__()
        missing = [t for t in FACTORCL_TERMS if t not in dims]
        extra = [t for t in dims if t not in FACTORCL_TERMS]
        if missing or extra:
            raise ValueError(f"FactorCLLoss: dims must name exactly the terms {list(FACTORCL_TERMS)}; "
                             f"missing {missing}, unknown {extra}")
        self.critics = nn.ModuleDict({t: ConcatCritic(*dims[t], hidden=critic_hidden) for t in FACTORCL_TERMS})
        self.club_off_diagonal = bool(club_off_diagonal)

    def club_parameters(self) -> list[nn.Parameter]:
        """φ: the parameters of the critics of the NCE-CLUB terms."""
        return [p for t in CLUB_TERMS for p in self.critics[t].parameters()]

    def main_parameters(self) -> list[nn.Parameter]:
        """The critics' parameters updated by the main loss (those of the InfoNCE terms)."""
        return [p for t in FACTORCL_TERMS if t not in CLUB_TERMS for p in self.critics[t].parameters()]

    def _inputs(self, inputs: Mapping[str, tuple[torch.Tensor, torch.Tensor]], terms) -> None:
        missing = [t for t in terms if t not in inputs]
        if missing:
            raise ValueError(f"FactorCLLoss: missing critic inputs for terms {missing}")

    def estimates(self, inputs: Mapping[str, tuple[torch.Tensor, torch.Tensor]]) -> dict[str, torch.Tensor]:
        self._inputs(inputs, FACTORCL_TERMS)
        n = inputs["nce"][0].shape[0]
        if n < 2:
            raise ValueError("FactorCLLoss: needs at least 2 samples")
        out = {}
        for t in FACTORCL_TERMS:
            scores = self.critics[t].pairwise(*inputs[t])
            out[t] = nce_club_from_scores(scores, self.club_off_diagonal) if t in CLUB_TERMS else infonce_from_scores(scores)
        return out

    def forward(self, inputs: Mapping[str, tuple[torch.Tensor, torch.Tensor]]) -> LossOutput:
        est = self.estimates(inputs)
        objective = sum(FACTORCL_TERMS[t] * est[t] for t in FACTORCL_TERMS)
        terms = {f"I_{t}": v.detach() for t, v in est.items()}
        terms["objective"] = objective.detach()
        return LossOutput(-objective, terms)

    def club_critic_loss(self, inputs: Mapping[str, tuple[torch.Tensor, torch.Tensor]]) -> LossOutput:
        """Algorithm 3's inner loss for φ: −(Î_NCE(X1;X2|C) + Î_NCE(X1;X2)) evaluated with the CLUB critics (so that
        they approach the optimal InfoNCE critic f* the NCE-CLUB bound needs). Pass detached inputs."""
        self._inputs(inputs, CLUB_TERMS)
        est = {t: critic_infonce(self.critics[t], *inputs[t]) for t in CLUB_TERMS}
        total = est["club_cond"] + est["club"]
        return LossOutput(-total, {f"I_nce_critic_{t}": v.detach() for t, v in est.items()})
