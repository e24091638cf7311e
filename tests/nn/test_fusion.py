"""mmib.nn.fusion: every fusion module against its formula written out by hand (float64), the zero token (or the
dropped token) of a missing modality, the Gaussian encoder's two σ parameterisations and its reparameterised
sample, and the named errors."""

import pytest
import torch
import torch.nn.functional as F

from mmib.nn.fusion import (
    BiGatedFusion,
    ConcatFusion,
    CrossAttentionFusion,
    FiLMFusion,
    GaussianEncoder,
    TokenTransformerFusion,
)


def _x(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _lin(layer, x):
    return x @ layer.weight.T + layer.bias


def test_gaussian_encoder_softplus_and_logvar_parameterisations():
    torch.manual_seed(0)
    z = _x(5, 3)
    enc = GaussianEncoder(3, 2, hidden=4, act="tanh").double()
    h = torch.tanh(_lin(enc.body[0], z))
    mu, logvar = enc(z)
    torch.testing.assert_close(mu, _lin(enc.mu, h))
    std = F.softplus(_lin(enc.scale, h) - 5.0) + 1e-6  # Mai et al.: σ = softplus(h − 5)
    torch.testing.assert_close(logvar, 2.0 * std.log())
    lv = GaussianEncoder(3, 2, hidden=4, sigma="logvar").double()
    torch.nn.init.constant_(lv.scale.bias, 100.0)
    torch.nn.init.zeros_(lv.scale.weight)
    assert torch.equal(lv(z)[1], torch.full((5, 2), 20.0, dtype=torch.float64))  # clamped to [-30, 20]
    with pytest.raises(ValueError, match="sigma must be one of"):
        GaussianEncoder(3, 2, sigma="exp")


def test_gaussian_sample_is_mu_plus_sigma_times_the_generator_noise():
    mu, logvar = _x(4, 3, seed=1), _x(4, 3, seed=2)
    eps = torch.randn(4, 3, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    got = GaussianEncoder.sample(mu, logvar, torch.Generator().manual_seed(7))
    torch.testing.assert_close(got, mu + (0.5 * logvar).exp() * eps)
    torch.testing.assert_close(GaussianEncoder.sample(mu, torch.full_like(mu, -200.0)), mu)  # σ → 0: the mean


def test_cross_attention_cross_mode_attends_only_to_the_other_modality():
    # M = 2, mode "cross", no residual: each token's only key is the other token, so its attention output is
    # out_proj(v_proj(other)) whatever the queries are
    torch.manual_seed(0)
    f = CrossAttentionFusion(4, 2, heads=2, residual_norm=False, mode="cross").double().eval()
    x0, x1 = _x(3, 4, seed=1), _x(3, 4, seed=2)
    w_v, b_v = f.attn.in_proj_weight[8:], f.attn.in_proj_bias[8:]

    def att(x):
        return _lin(f.attn.out_proj, x @ w_v.T + b_v)

    torch.testing.assert_close(f([x0, x1]), _lin(f.out, torch.cat([att(x1), att(x0)], 1)))
    # a missing modality is a zero token
    torch.testing.assert_close(f([x0, None]), f([x0, torch.zeros_like(x1)]))
    # self mode with the residual LayerNorm: a permutation-free check of shape and of the zero token
    s = CrossAttentionFusion(4, 3, heads=2).double().eval()
    assert s([x0, x1, x0]).shape == (3, 4)
    torch.testing.assert_close(s([None, x1, x0]), s([torch.zeros_like(x0), x1, x0]))


@pytest.mark.parametrize("kwargs,match", [
    (dict(dim=5, n_modalities=2, heads=2), "not divisible by heads"),
    (dict(dim=4, n_modalities=2, mode="both"), "mode must be 'self' or 'cross'"),
    (dict(dim=4, n_modalities=1, mode="cross"), "needs >= 2 modalities"),
])
def test_cross_attention_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CrossAttentionFusion(**kwargs)


def test_cross_attention_bad_inputs():
    f = CrossAttentionFusion(4, 2, heads=2)
    with pytest.raises(ValueError, match="expected 2 tokens, got 3"):
        f([torch.zeros(2, 4)] * 3)
    with pytest.raises(ValueError, match="at least one modality must be present"):
        f([None, None])
    with pytest.raises(ValueError, match=r"modality 1 must be \(N=2, 4\), got \(2, 5\)"):
        f([torch.zeros(2, 4), torch.zeros(2, 5)])


def test_concat_fusion_is_one_linear_map_on_the_concatenation():
    torch.manual_seed(0)
    f = ConcatFusion([2, 3], 4).double()
    x0, x1 = _x(5, 2, seed=1), _x(5, 3, seed=2)
    torch.testing.assert_close(f([x0, x1]), _lin(f.net[0], torch.cat([x0, x1], 1)))
    torch.testing.assert_close(f([None, x1]), _lin(f.net[0], torch.cat([torch.zeros(5, 2, dtype=x1.dtype), x1], 1)))
    with pytest.raises(ValueError, match="expected 2 inputs, got 1"):
        f([x0])
    with pytest.raises(ValueError, match="at least one modality"):
        f([None, None])


def test_film_modulates_the_target_with_the_other_modalities():
    torch.manual_seed(0)
    f = FiLMFusion(3, 3, 2).double()  # target: the last modality
    x = [_x(4, 3, seed=i) for i in range(3)]
    gamma, b = _lin(f.film, torch.cat([x[0], x[1]], 1)).chunk(2, 1)
    torch.testing.assert_close(f(x), _lin(f.out, gamma * x[2] + b))
    g = FiLMFusion(3, 3, 2, target=0).double()
    gamma, b = _lin(g.film, torch.cat([x[1], x[2]], 1)).chunk(2, 1)
    torch.testing.assert_close(g(x), _lin(g.out, gamma * x[0] + b))
    with pytest.raises(ValueError, match="needs >= 2 modalities"):
        FiLMFusion(3, 1, 2)


def test_bigated_fusion_gates_each_modality_by_the_mean_of_the_others():
    torch.manual_seed(0)
    f = BiGatedFusion(3, 3, 2, hidden=4).double()
    x = [_x(4, 3, seed=i) for i in range(3)]
    hs = []
    for i in range(3):
        others = sum(x[k] for k in range(3) if k != i) / 2
        hs.append(torch.sigmoid(_lin(f.gate[i], others)) * _lin(f.value[i], x[i]))
    torch.testing.assert_close(f(x), _lin(f.out, torch.cat(hs, 1)))
    with pytest.raises(ValueError, match="needs >= 2 modalities"):
        BiGatedFusion(3, 1, 2)


def test_token_transformer_drops_missing_modalities_from_attention_and_pooling():
    torch.manual_seed(0)
    f = TokenTransformerFusion(4, 3, 2, heads=2, ffn=8, dropout=0.0).double().eval()
    x0, x2 = _x(5, 4, seed=1), _x(5, 4, seed=2)
    with torch.no_grad():
        got = f([x0, None, x2])
        t = torch.stack([x0, x2], 1) + f.type_embedding[[0, 2]][None]
        want = _lin(f.out, f.block(t).mean(1))
    torch.testing.assert_close(got, want)
    with torch.no_grad():  # a zero token is not the same as a dropped one
        assert not torch.allclose(got, f([x0, torch.zeros_like(x0), x2]))
