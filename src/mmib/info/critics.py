"""Critics ``f(x, y)`` for the variational MI bounds, each returning the full score matrix of a batch.

Every critic maps ``x: (N, dx)`` and ``y: (M, dy)`` to ``scores: (N, M)`` with ``scores[i, j] = f(x_i, y_j)``,
the layout :mod:`mmib.info.bounds` expects. The three designs are those compared by Poole et al. (ICML 2019, §4):

- :class:`SeparableCritic` ``f(x, y) = g(x)ᵀ h(y)`` (FactorCL main text §3.1; CPC; CLIP-style).
- :class:`ConcatCritic` ``f(x, y) = h([x, y])``, an MLP on the concatenation evaluated on all N×M pairs
  (FactorCL App. D.1: "we adopt the concat critic design ... with h_θ being an MLP"; their synthetic critic: one
  hidden layer of 512, ReLU).
- :class:`BilinearCritic` ``f(x, y) = xᵀ W y`` (the optimal critic form for jointly Gaussian x, y up to
  terms in x or y alone).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mmib.nn.heads import MLP, activation


def _check_dim(name: str, value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def mlp(in_dim: int, hidden_dim: int, out_dim: int, hidden_layers: int = 1) -> MLP:
    """A ReLU MLP with ``hidden_layers`` hidden layers of width ``hidden_dim``: :class:`mmib.nn.heads.MLP` with the
    critics' argument checks (same layers, same order of parameter creation)."""
    _check_dim("in_dim", in_dim)
    _check_dim("hidden_dim", hidden_dim)
    _check_dim("out_dim", out_dim)
    if not isinstance(hidden_layers, int) or hidden_layers < 0:
        raise ValueError(f"hidden_layers must be an integer >= 0, got {hidden_layers!r}")
    return MLP(in_dim, out_dim, hidden=[hidden_dim] * hidden_layers, act="relu")


class Critic(nn.Module):
    """Base class: holds the input sizes and checks the inputs of :meth:`forward`."""

    def __init__(self, x_dim: int, y_dim: int):
        super().__init__()
        self.x_dim = _check_dim("x_dim", x_dim)
        self.y_dim = _check_dim("y_dim", y_dim)

    def _check(self, x: torch.Tensor, y: torch.Tensor) -> None:
        for name, t, d in (("x", x, self.x_dim), ("y", y, self.y_dim)):
            if not isinstance(t, torch.Tensor) or t.dim() != 2 or t.shape[1] != d:
                got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                raise ValueError(f"{type(self).__name__}: {name} must be a 2-D tensor (N, {d}), got {got}")


class SeparableCritic(Critic):
    """``f(x, y) = g(x)ᵀ h(y)`` with MLPs ``g``, ``h`` (Poole et al. 2019 "separable"; FactorCL §3.1).

    Args:
        x_dim, y_dim: input sizes.
        embed_dim: size of ``g(x)`` and ``h(y)``.
        hidden_dim, hidden_layers: the MLPs' hidden width and depth.

    Example:
        >>> critic = SeparableCritic(5, 3)
        >>> critic(torch.randn(8, 5), torch.randn(8, 3)).shape
        torch.Size([8, 8])
    """

    def __init__(self, x_dim: int, y_dim: int, embed_dim: int = 32, hidden_dim: int = 256, hidden_layers: int = 1,
                 linear_skip: bool = False):
        super().__init__(x_dim, y_dim)
        self.g = mlp(x_dim, hidden_dim, embed_dim, hidden_layers)
        self.h = mlp(y_dim, hidden_dim, embed_dim, hidden_layers)
        self.linear_skip = bool(linear_skip)
        if self.linear_skip:
            self.g_lin = nn.Linear(x_dim, embed_dim, bias=False)
            self.h_lin = nn.Linear(y_dim, embed_dim, bias=False)

    def embed(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``g(x)`` and ``h(y)`` (with ``linear_skip``: ``A x + MLP(x)`` and ``B y + MLP(y)``)."""
        gx, hy = self.g(x), self.h(y)
        if self.linear_skip:
            gx, hy = gx + self.g_lin(x), hy + self.h_lin(y)
        return gx, hy

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self._check(x, y)
        gx, hy = self.embed(x, y)
        return gx @ hy.T


class ConcatCritic(Critic):
    """``f(x, y) = h([x, y])``: an MLP on the concatenation, evaluated on all N×M pairs (FactorCL App. D.1).

    The first layer ``W [x; y] + b = W_x x + W_y y + b`` is applied to ``x`` and ``y`` separately and broadcast,
    so the (N, M, dx + dy) concatenation is never built; the result equals the MLP on every concatenated pair.
    The one concatenation critic of the library: FactorCL's objective (:mod:`mmib.objectives.factorcl`) uses it
    through :meth:`paired` and :meth:`scores_by_y`.

    Args:
        x_dim, y_dim: input sizes.
        hidden_dim: width of the hidden layers (FactorCL: 512).
        hidden_layers: number of hidden layers, >= 1 (FactorCL: 1).
        act: activation name (:data:`mmib.nn.heads.ACTIVATIONS`).
        hidden: explicit hidden sizes (>= 1 of them), instead of ``hidden_dim`` × ``hidden_layers``.

    Example:
        >>> critic = ConcatCritic(5, 3, hidden_dim=16)
        >>> critic(torch.randn(8, 5), torch.randn(6, 3)).shape
        torch.Size([8, 6])
    """

    def __init__(self, x_dim: int, y_dim: int, hidden_dim: int = 512, hidden_layers: int = 1, act: str = "relu",
                 hidden: Sequence[int] | None = None):
        super().__init__(x_dim, y_dim)
        if hidden is None:
            _check_dim("hidden_dim", hidden_dim)
            if not isinstance(hidden_layers, int) or hidden_layers < 1:
                raise ValueError(f"hidden_layers must be an integer >= 1 for ConcatCritic, got {hidden_layers!r}")
            sizes = [hidden_dim] * hidden_layers
        else:
            sizes = [_check_dim("hidden sizes", h) for h in hidden]
            if not sizes:
                raise ValueError("ConcatCritic: needs at least one hidden layer (a linear critic is additive in x "
                                 "and y and cannot estimate mutual information)")
        self.first = nn.Linear(x_dim + y_dim, sizes[0])
        self.act = activation(act)  # a module, so that hooks (dead-unit diagnostics) see the first hidden layer
        self.rest = MLP(sizes[0], 1, hidden=sizes[1:], act=act)

    def _halves(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._check(x, y)
        w_x, w_y = self.first.weight[:, : self.x_dim], self.first.weight[:, self.x_dim :]
        return x @ w_x.T, y @ w_y.T  # (N, H), (M, H)

    def _grid(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        hidden = self.act(rows[:, None, :] + cols[None, :, :])  # (rows, cols, H)
        return self.rest(hidden).squeeze(-1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        a, b = self._halves(x, y)
        return self._grid(a + self.first.bias, b)

    def scores_by_y(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The transposed layout, (M, N) with ``out[j, i] = f(x_i, y_j)`` (the bias added on the ``y`` side):
        FactorCL's ``T[i, j] = f(a_j, b_i)`` with ``x := a``, ``y := b``."""
        a, b = self._halves(x, y)
        return self._grid(b + self.first.bias, a)

    def paired(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``f(x_i, y_i)`` for every row ``i`` → (N,) (the diagonal of :meth:`forward`)."""
        self._check(x, y)
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"ConcatCritic.paired: x and y need the same number of rows, got {x.shape[0]} and "
                             f"{y.shape[0]}")
        return self.rest(self.act(self.first(torch.cat([x, y], dim=1)))).squeeze(-1)


class BilinearCritic(Critic):
    """``f(x, y) = xᵀ W y`` (Poole et al. 2019 "bilinear"; optimal up to x- and y-only terms for Gaussians).

    Example:
        >>> BilinearCritic(5, 3)(torch.randn(8, 5), torch.randn(8, 3)).shape
        torch.Size([8, 8])
    """

    def __init__(self, x_dim: int, y_dim: int, init_std: float = 0.01):
        super().__init__(x_dim, y_dim)
        self.weight = nn.Parameter(torch.randn(x_dim, y_dim) * init_std)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self._check(x, y)
        return x @ self.weight @ y.T


#: tanh components per coordinate of :class:`MonotoneMap` (the default)
MONOTONE_COMPONENTS = 8


class MonotoneMap(nn.Module):
    """A learned, strictly increasing map of every coordinate, ``φ(u) = a u + Σ_k w_k tanh(b_k u + c_k)`` with
    ``a, w_k, b_k > 0`` (softplus), ``k = 1..K`` per coordinate: the estimators' ``input_map="monotone"``.

    The MI is invariant under an invertible map of each variable, so a critic that first learns such a map can
    undo a monotone distortion of every coordinate (e.g. ``x³``) that an MLP on the raw values learns slowly. It
    starts close to the identity (``a = 1``, ``w_k ≈ 0.018``; the ``b_k`` log-spaced over [0.3, 10], the ``c_k``
    over [-2, 2], for standardized inputs). ``lr_scale``: the parameters are stored divided by it, so that Adam's
    steps on them are ``lr_scale`` times those of the critic (measured in ``docs/guide/information.md``).

    Example:
        >>> phi = MonotoneMap(3)
        >>> u = torch.linspace(-3, 3, 7)[:, None].expand(7, 3)
        >>> bool((phi(u).diff(dim=0) > 0).all()), phi.log_derivative(u).shape
        (True, torch.Size([7]))
    """

    def __init__(self, dim: int, components: int = MONOTONE_COMPONENTS, lr_scale: float = 30.0):
        super().__init__()
        _check_dim("dim", dim)
        _check_dim("components", components)
        if not (isinstance(lr_scale, (int, float)) and lr_scale > 0):
            raise ValueError(f"lr_scale must be a number > 0, got {lr_scale!r}")
        self.lr_scale = float(lr_scale)
        inv_softplus = lambda v: torch.log(torch.expm1(torch.as_tensor(v, dtype=torch.float32)))  # noqa: E731
        k = components
        self.a = nn.Parameter(inv_softplus(torch.ones(dim)) / self.lr_scale)
        self.w = nn.Parameter(torch.full((dim, k), -4.0) / self.lr_scale)
        self.b = nn.Parameter(inv_softplus(torch.logspace(-0.5, 1.0, k)).repeat(dim, 1) / self.lr_scale)
        self.c = nn.Parameter(torch.linspace(-2.0, 2.0, k).repeat(dim, 1) / self.lr_scale)

    def _parts(self, u: torch.Tensor):
        s = self.lr_scale
        a, w, b = (nn.functional.softplus(p * s) for p in (self.a, self.w, self.b))
        return a, w, b, torch.tanh(b * u[..., None] + self.c * s)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        a, w, _, t = self._parts(u)
        return a * u + (w * t).sum(-1)

    def log_derivative(self, u: torch.Tensor) -> torch.Tensor:
        """``Σ_coordinates log φ'(u)`` per row, (N,): the log-Jacobian of the map (CLUB's likelihood needs it)."""
        a, w, b, t = self._parts(u)
        return torch.log(a + (w * b * (1 - t * t)).sum(-1)).sum(-1)


#: critic classes by name (the ``critic=`` argument of the estimators)
CRITICS: dict[str, type[Critic]] = {
    "separable": SeparableCritic,
    "concat": ConcatCritic,
    "bilinear": BilinearCritic,
}


def build_critic(name: str | Critic, x_dim: int, y_dim: int, **kwargs) -> Critic:
    """A critic by name (``separable``, ``concat``, ``bilinear``), or the given module after checking its sizes."""
    if isinstance(name, Critic):
        if (name.x_dim, name.y_dim) != (x_dim, y_dim):
            raise ValueError(f"critic takes inputs of sizes ({name.x_dim}, {name.y_dim}); "
                             f"the estimator needs ({x_dim}, {y_dim}) (conditioning variables included)")
        return name
    if name not in CRITICS:
        from mmib.errors import UnknownNameError

        raise UnknownNameError("critic", str(name), list(CRITICS))
    return CRITICS[name](x_dim, y_dim, **kwargs)
