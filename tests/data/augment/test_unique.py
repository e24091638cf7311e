"""mmib.data.augment.unique: FactorCL's unique augmentation protects what X2 shares with X1 (given indices, the
in-sample "auto" rule and the cross-validated "cv" rule)."""

import math

import pytest
import torch

from mmib.data.augment import GaussianNoise, UniqueAugmentation, make_generator
from mmib.data.synthetic.rus import make_rus
from mmib.errors import MMIBError


def test_unique_augmentation_protect_indices_and_auto():
    ds = make_rus(n_samples=200, dim=32, noise=0.0)
    x1, x2 = ds.x["x1"], ds.x["x2"]
    ua = UniqueAugmentation(GaussianNoise("vector", 1.0), protect=[0, 3])
    out = ua(x2, x1, make_generator(0))
    assert torch.equal(out[:, [0, 3]], x2[:, [0, 3]]) and not torch.equal(out, x2)
    auto = UniqueAugmentation(GaussianNoise("vector", 1.0), protect="auto")
    basis = auto.shared_basis(x2, x1)
    delta = auto(x2, x1, make_generator(0)) - x2
    assert float((delta @ basis).abs().max()) < 1e-3
    # the redundant code is what x2 shares with x1: its direction lies in the protected basis
    none = UniqueAugmentation(GaussianNoise("vector", 1.0), protect=None)
    assert torch.equal(none(x2, x1, make_generator(0)), GaussianNoise("vector", 1.0)(x2, make_generator(0)))


def _shared_pairs(seed: int, k: int, n: int = 256, shape1=(32,), shape2=(32,), scale: float = 1.0):
    """X1, X2 with a shared latent subspace of rank k (k = 0: independent), Gaussian noise of unit variance."""
    g = torch.Generator().manual_seed(seed)
    d1, d2 = math.prod(shape1), math.prod(shape2)
    s = torch.randn(n, max(k, 1), generator=g) * (1.0 if k else 0.0)
    a1 = torch.randn(max(k, 1), d1, generator=g) * scale
    a2 = torch.randn(max(k, 1), d2, generator=g) * scale
    x1 = torch.randn(n, d1, generator=g) + s @ a1
    x2 = torch.randn(n, d2, generator=g) + s @ a2
    return x1.reshape(n, *shape1), x2.reshape(n, *shape2)


@pytest.mark.parametrize("shapes", [((32,), (32,)), ((4, 64), (8, 64))], ids=["vectors", "signals_dim_gt_batch"])
def test_unique_augmentation_cv_rank_independent_and_shared(shapes):
    """protect='cv': rank <= 1 on independent modalities and = k on a shared rank-k subspace, in >= 9 of 10 draws
    (the signals are flattened to 256 / 512 features, the 512 above the batch of 256)."""
    ua = UniqueAugmentation(GaussianNoise("vector", 1.0), protect="cv", permutations=9)
    scale = 1.0 if shapes[0] == (32,) else 0.25
    indep = [ua.cv_shared_basis(*reversed(_shared_pairs(s, 0, shape1=shapes[0], shape2=shapes[1])))[1]["rank"]
             for s in range(10)]
    assert sum(r <= 1 for r in indep) >= 9, indep
    shared = [ua.cv_shared_basis(*reversed(_shared_pairs(s, 3, shape1=shapes[0], shape2=shapes[1],
                                                         scale=scale)))[1]["rank"] for s in range(10)]
    assert sum(r == 3 for r in shared) >= 9, shared
    # the earlier in-sample rule protects about half the rank of independent vectors
    if shapes[0] == (32,):
        auto = UniqueAugmentation(GaussianNoise("vector", 1.0), protect="auto")
        assert auto.shared_basis(*reversed(_shared_pairs(0, 0))).shape[1] >= 8


def test_unique_augmentation_cv_keeps_the_shared_subspace():
    x1, x2 = _shared_pairs(0, 2, shape1=(16,), shape2=(4, 8))
    ua = UniqueAugmentation(GaussianNoise("signal", 1.0), protect="cv", permutations=5, refresh_every=3)
    basis = ua.shared_basis(x2, x1)
    assert basis.shape == (32, 2)
    torch.testing.assert_close(basis.T @ basis, torch.eye(2), atol=1e-5, rtol=0)
    out = ua(x2, x1, make_generator(0))
    delta = (out - x2).reshape(x2.shape[0], -1)
    assert out.shape == x2.shape and float(delta.abs().max()) > 0.1
    assert float((delta @ basis).abs().max()) < 1e-4  # no perturbation inside the protected subspace
    with pytest.raises(MMIBError, match="protect must be"):
        UniqueAugmentation(GaussianNoise("vector", 1.0), protect="energy")
