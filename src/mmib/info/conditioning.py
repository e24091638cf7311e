"""The conditioning variable of the MI estimators (:mod:`mmib.info.estimators`): its options (which negatives, which
side it conditions), its widths, the checks of ``x``, ``y``, ``c`` at the boundary and the same-condition mask.
See the estimators' module docstring for what conditioning estimates."""

from __future__ import annotations

import torch

NEGATIVES = ("batch", "same_condition")
CONDITION_ON = ("both", "x")


def _shape(t) -> str:
    return str(tuple(t.shape)) if isinstance(t, torch.Tensor) else type(t).__name__


#: a conditioning argument: a tensor ``c`` (appended to both sides) or a pair ``(c_x, c_y)`` (one per side)
Condition = torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None


def is_pair(c) -> bool:
    return isinstance(c, (tuple, list))


def c_widths(c_dim: int | tuple[int, int]) -> tuple[int, int]:
    """``c_dim`` (an integer, or a pair for per-side conditioning) as ``(width of c_x, width of c_y)``."""
    return (c_dim, c_dim) if isinstance(c_dim, int) else (int(c_dim[0]), int(c_dim[1]))


def check_c_dim(c_dim) -> int | tuple[int, int]:
    if isinstance(c_dim, int) and not isinstance(c_dim, bool) and c_dim >= 0:
        return c_dim
    if (is_pair(c_dim) and len(c_dim) == 2
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
    elif is_pair(c):
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
        names = ("c", "c") if not is_pair(c) else ("c_x", "c_y")
        for name, t, d in ((names[0], pair[0], kx), (names[1], pair[1], ky)):
            if not isinstance(t, torch.Tensor) or t.dim() != 2 or t.shape != (n, d):
                raise ValueError(f"{who}: {name} must be a 2-D tensor ({n}, {d if d >= 0 else 'k'}), "
                                 f"got {_shape(t)}")
    checks = [("x", x), ("y", y)]
    if pair is not None:
        checks += [("c", pair[0])] if not is_pair(c) else [("c_x", pair[0]), ("c_y", pair[1])]
    for name, t in checks:
        if not torch.isfinite(t).all():
            raise ValueError(f"{who}: {name} contains NaN or inf")
    return pair


def condition_mask(c: Condition, pair: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """The same-condition mask of a checked conditioning argument: by ``c``, or by the joint rows ``(c_x, c_y)``."""
    return same_condition_mask(torch.cat(pair, dim=1) if is_pair(c) else c)


def same_condition_mask(c: torch.Tensor) -> torch.Tensor:
    """``mask[i, j] = (c_i == c_j)`` row-wise (exact equality): negatives drawn from ``p(y | c_i)``.

    For per-side conditioning pass ``torch.cat([c_x, c_y], 1)`` (the joint conditioning variable)."""
    return (c[:, None, :] == c[None, :, :]).all(dim=-1)
