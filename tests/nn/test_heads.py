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


def test_batch_centre_training_eval_offset_and_running_mean_by_hand():
    from mmib.nn.heads import BatchCentre

    torch.manual_seed(0)
    c = BatchCentre(3, offset=True, momentum=0.25)
    with torch.no_grad():
        c.offset.copy_(torch.tensor([1.0, -2.0, 0.5]))
    x1, x2 = torch.randn(5, 3) + 4.0, torch.randn(7, 3) - 1.0
    torch.testing.assert_close(c(x1), x1 - x1.mean(0) + c.offset)  # training: the batch's own mean
    c(x2)
    running = 0.75 * (0.75 * torch.zeros(3) + 0.25 * x1.mean(0)) + 0.25 * x2.mean(0)
    torch.testing.assert_close(c.running_mean, running)
    c.eval()
    x3 = torch.randn(4, 3)
    torch.testing.assert_close(c(x3), x3 - running + c.offset)  # evaluation: the running mean, rows independent
    torch.testing.assert_close(c(x3[:1]), (x3 - running + c.offset)[:1])
    c.train()
    torch.testing.assert_close(c(x3[:1]), x3[:1] - running + c.offset)  # one row: not erased by its own mean
    plain = BatchCentre(3, offset=False)
    assert plain.offset is None and "offset" not in dict(plain.named_parameters())
    torch.testing.assert_close(plain(x1), x1 - x1.mean(0))
    # gradients flow through the batch mean (as in BatchNorm): the centred outputs sum to 0 whatever the input
    x = torch.randn(6, 3, requires_grad=True)
    plain(x).sum().backward()
    torch.testing.assert_close(x.grad, torch.zeros(6, 3))


def test_batch_centre_loads_a_state_dict_without_its_entries_as_the_identity():
    from mmib.nn.heads import BatchCentre

    holder = nn.ModuleDict({"head": nn.Linear(2, 3), "centre": BatchCentre(3)})
    with torch.no_grad():
        holder["centre"].running_mean.fill_(5.0)
        holder["centre"].offset.fill_(1.0)
    old = {k: v for k, v in holder.state_dict().items() if not k.startswith("centre.")}
    holder.load_state_dict(old)  # strict: no missing-key error
    holder.eval()
    x = torch.randn(4, 3)
    torch.testing.assert_close(holder["centre"](x), x)
    saved = {**old, "centre.running_mean": torch.full((3,), 2.0), "centre.offset": torch.ones(3)}
    holder.load_state_dict(saved)
    torch.testing.assert_close(holder["centre"](x), x - 1.0)
    with pytest.raises(RuntimeError, match="offset"):  # a partial entry is an error, not the identity
        holder.load_state_dict({**old, "centre.running_mean": torch.zeros(3)})


@pytest.mark.parametrize("kwargs,match", [(dict(dim=0), "dim must be >= 1"), (dict(dim=3, momentum=0.0), "momentum"),
                                          (dict(dim=3, momentum=1.5), "momentum")])
def test_batch_centre_rejects_bad_settings(kwargs, match):
    from mmib.nn.heads import BatchCentre

    with pytest.raises(ValueError, match=match):
        BatchCentre(**kwargs)


def test_batch_centre_names_the_expected_shape():
    from mmib.nn.heads import BatchCentre

    with pytest.raises(ValueError, match=r"expected a \(batch, 3\) tensor"):
        BatchCentre(3)(torch.randn(2, 4))
