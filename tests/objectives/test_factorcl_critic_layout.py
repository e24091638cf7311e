"""FactorCL's ConcatCritic is a layout adapter over mmib.info's: checkpoints written with its earlier parameter names
(``first.*``, ``rest.<2k+1>.*``: ``rest`` began with the activation) load, and score as that MLP does (float64 loop)."""

import torch

from mmib.info.critics import ConcatCritic as InfoConcatCritic
from mmib.objectives.factorcl import ConcatCritic


def _old_layout_state(a_dim, b_dim, hidden, gen):
    sizes = [a_dim + b_dim, *hidden, 1]
    state = {}
    for k, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        prefix = "first." if k == 0 else f"rest.{2 * k - 1}."
        state[prefix + "weight"] = torch.randn(d_out, d_in, generator=gen, dtype=torch.float64)
        state[prefix + "bias"] = torch.randn(d_out, generator=gen, dtype=torch.float64)
    return state


def _mlp_reference(state, hidden, v):
    layers = [("first.weight", "first.bias")] + [(f"rest.{2 * k - 1}.weight", f"rest.{2 * k - 1}.bias")
                                                 for k in range(1, len(hidden) + 1)]
    h = v
    for i, (w, b) in enumerate(layers):
        h = state[w] @ h + state[b]
        if i < len(layers) - 1:
            h = torch.clamp_min(h, 0.0)
    return float(h[0])


def test_old_checkpoint_keys_load_and_score_like_the_mlp():
    gen = torch.Generator().manual_seed(0)
    hidden = (6, 5)
    state = _old_layout_state(3, 2, hidden, gen)
    critic = ConcatCritic(3, 2, hidden=hidden).double()
    critic.load_state_dict({k: v.clone() for k, v in state.items()})
    assert isinstance(critic.critic, InfoConcatCritic)
    a, b = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    t = critic.pairwise(a, b)
    for i in range(4):
        for j in range(4):  # T[i, j] = f(a_j, b_i)
            assert abs(float(t[i, j]) - _mlp_reference(state, hidden, torch.cat([a[j], b[i]]))) < 1e-12
    # and the state written now round-trips
    again = ConcatCritic(3, 2, hidden=hidden).double()
    again.load_state_dict(critic.state_dict())
    torch.testing.assert_close(again.pairwise(a, b), t, rtol=0, atol=0)
