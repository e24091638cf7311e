"""seeded_module: the probes' initial weights from a generator of their own, bit for bit those of
``torch.manual_seed(seed); build()``, without reading or changing torch's global generator (so probes in threads
side by side get the same weights in any order)."""

import threading

import numpy as np
import pytest
import torch
from torch import nn

from mmib.errors import MMIBError
from mmib.eval.probe import ProbeConfig, fit_linear_probes, fit_probe
from mmib.eval.probe.config import seeded_module
from mmib.nn.heads import MLP


@pytest.mark.parametrize("build", [lambda: nn.Linear(1536, 10), lambda: nn.Linear(7, 3), lambda: nn.Linear(5, 2, bias=False),
                                   lambda: MLP(40, 3, [16] * 3), lambda: MLP(12, 4, [8], dropout=0.1)])
@pytest.mark.parametrize("seed", [0, 3])
def test_the_weights_of_torch_manual_seed_without_the_global_generator(build, seed):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        want = build()
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    got = seeded_module(build, seed)
    assert torch.equal(torch.random.get_rng_state(), state)  # neither read nor changed
    assert list(got.state_dict()) == list(want.state_dict())
    for k, v in want.state_dict().items():
        assert got.state_dict()[k].device.type == "cpu" and torch.equal(got.state_dict()[k], v), k


def test_modules_with_other_parameters_are_refused():
    with pytest.raises(MMIBError, match="cannot initialize a LayerNorm"):
        seeded_module(lambda: MLP(4, 2, [3], norm="layer"), 0)


def _data(n=300, d=6, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = (rng.normal(size=(3, d))[y] + rng.normal(size=(n, d))).astype(np.float32)
    return x[:180], y[:180], x[180:240], y[180:240], x[240:], y[240:]


def test_probes_do_not_depend_on_the_global_generator_nor_on_threads_beside():
    data = _data()
    cfg = {k: ProbeConfig(k, max_epochs=15, seed=2) for k in ("linear", "mlp")}
    blocks = [[s[:, :3], s[:, 3:]] if s.ndim == 2 else s for s in data]

    def fit_all():
        one = {k: fit_probe(*data, "classification", 3, c) for k, c in cfg.items()}
        many = fit_linear_probes(blocks[0], data[1], blocks[2], data[3], blocks[4], data[5], [(0,), (1,), (0, 1)],
                                 "classification", 3, cfg["linear"])
        return [r.best_val_loss for r in one.values()] + [r.best_val_loss for r in many]

    torch.manual_seed(0)
    want = fit_all()
    torch.manual_seed(99)
    got = [None] * 4
    threads = [threading.Thread(target=lambda i=i: got.__setitem__(i, fit_all())) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(g == want for g in got)
