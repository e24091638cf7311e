"""mmib.nn.heads: the activation lookup, the MLP's layer layout (hidden sizes, norms, dropout) and its forward as
the hand-composed affine maps, and the projection head's shape."""

import pytest
import torch
from torch import nn

from mmib.nn.heads import ACTIVATIONS, MLP, ProjectionHead, activation


def test_activation_names_and_unknown_name():
    for name, cls in ACTIVATIONS.items():
        assert isinstance(activation(name), cls)
    with pytest.raises(ValueError, match="unknown activation 'swish'; valid: relu"):
        activation("swish")


def test_mlp_layout_and_forward_by_hand():
    torch.manual_seed(0)
    mlp = MLP(3, 2, hidden=[4, 5], act="tanh", norm="layer", dropout=0.5).eval()
    kinds = [type(m) for m in mlp]
    assert kinds == [nn.Linear, nn.LayerNorm, nn.Tanh, nn.Dropout, nn.Linear, nn.LayerNorm, nn.Tanh, nn.Dropout,
                     nn.Linear]
    assert (mlp.in_dim, mlp.out_dim) == (3, 2)
    assert [m.out_features for m in mlp if isinstance(m, nn.Linear)] == [4, 5, 2]
    x = torch.randn(6, 3)
    h = x
    for lin, ln in ((mlp[0], mlp[1]), (mlp[4], mlp[5])):
        h = h @ lin.weight.T + lin.bias
        h = (h - h.mean(1, keepdim=True)) / torch.sqrt(h.var(1, unbiased=False, keepdim=True) + ln.eps)
        h = torch.tanh(h * ln.weight + ln.bias)
    torch.testing.assert_close(mlp(x), h @ mlp[8].weight.T + mlp[8].bias)
    single = MLP(3, 2)
    assert len(single) == 1 and isinstance(single[0], nn.Linear)
    assert [type(m) for m in MLP(3, 2, [4], norm="batch")] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]


@pytest.mark.parametrize("kwargs,match", [
    (dict(in_dim=0, out_dim=2), "in_dim and out_dim must be >= 1"),
    (dict(in_dim=3, out_dim=0), "in_dim and out_dim must be >= 1"),
    (dict(in_dim=3, out_dim=2, hidden=[4], norm="group"), "norm must be 'batch', 'layer' or None"),
])
def test_mlp_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MLP(**kwargs)


def test_projection_head_depth_and_hidden_size():
    head = ProjectionHead(7, 3, n_layers=3)
    assert [m.out_features for m in head if isinstance(m, nn.Linear)] == [3, 3, 3]
    wide = ProjectionHead(7, 3, n_layers=2, hidden_dim=11, act="gelu")
    assert [(m.in_features, m.out_features) for m in wide if isinstance(m, nn.Linear)] == [(7, 11), (11, 3)]
    assert isinstance(wide[1], nn.GELU)
    assert len(ProjectionHead(7, 3, n_layers=1)) == 1
    with pytest.raises(ValueError, match="n_layers must be >= 1"):
        ProjectionHead(7, 3, n_layers=0)
