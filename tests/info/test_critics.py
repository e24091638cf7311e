"""mmib.info.critics: the concat, separable and bilinear critics against float64 loops over every (x, y) pair,
and the critic registry."""


import pytest
import torch

from mmib.errors import UnknownNameError
from mmib.info import (
    BilinearCritic,
    ConcatCritic,
    SeparableCritic,
)


def test_concat_critic_equals_mlp_on_every_concatenated_pair():
    torch.manual_seed(0)
    critic = ConcatCritic(3, 2, hidden_dim=8, hidden_layers=2).double()
    x, y = torch.randn(4, 3, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    net = torch.nn.Sequential(critic.first, torch.nn.ReLU(), critic.rest)
    ref = torch.tensor([[net(torch.cat([x[i], y[j]])).item() for j in range(5)] for i in range(4)],
                       dtype=torch.float64)
    assert torch.allclose(critic(x, y), ref, atol=1e-12)


def test_separable_and_bilinear_critics_match_loops():
    torch.manual_seed(0)
    sep = SeparableCritic(3, 2, embed_dim=4, hidden_dim=8).double()
    bil = BilinearCritic(3, 2, init_std=1.0).double()
    x, y = torch.randn(4, 3, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    for i in range(4):
        for j in range(5):
            assert sep(x, y)[i, j].detach().item() == pytest.approx(float((sep.g(x[i]) @ sep.h(y[j])).detach()), abs=1e-12)
            assert bil(x, y)[i, j].detach().item() == pytest.approx(float((x[i] @ bil.weight @ y[j]).detach()), abs=1e-12)


def test_concat_critic_transposed_layout_and_paired_diagonal():
    torch.manual_seed(0)
    critic = ConcatCritic(3, 2, hidden_dim=8).double()
    x, y = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    full = critic(x, y)
    torch.testing.assert_close(critic.scores_by_y(x, y), full.T)
    torch.testing.assert_close(critic.paired(x, y), full.diagonal())
    with pytest.raises(ValueError, match="paired: x and y need the same number of rows, got 4 and 3"):
        critic.paired(x, y[:3])
    with pytest.raises(ValueError, match=r"ConcatCritic: y must be a 2-D tensor \(N, 2\), got \(4, 3\)"):
        critic(x, x)


def test_build_critic_by_name_instance_and_errors():
    from mmib.info.critics import CRITICS, build_critic, mlp

    for name, cls in CRITICS.items():
        c = build_critic(name, 3, 2)
        assert type(c) is cls and (c.x_dim, c.y_dim) == (3, 2)
    given = BilinearCritic(3, 2)
    assert build_critic(given, 3, 2) is given
    with pytest.raises(ValueError, match=r"critic takes inputs of sizes \(3, 2\); the estimator needs \(4, 2\)"):
        build_critic(given, 4, 2)
    with pytest.raises(UnknownNameError, match="critic"):
        build_critic("quadratic", 3, 2)
    with pytest.raises(ValueError, match="x_dim must be a positive integer, got 0"):
        BilinearCritic(0, 2)
    assert [m.out_features for m in mlp(3, 5, 1, hidden_layers=2) if isinstance(m, torch.nn.Linear)] == [5, 5, 1]
    with pytest.raises(ValueError, match="hidden_layers must be an integer >= 0"):
        mlp(3, 5, 1, hidden_layers=-1)
    with pytest.raises(ValueError, match="hidden_dim must be a positive integer, got True"):
        mlp(3, True, 1)
