"""mmib.methods.cox.baselines: each COX baseline trains one step (the random one takes none), and the
baselines' loss helpers against closed forms."""

from __future__ import annotations

import math

import pytest
import torch


@pytest.mark.parametrize("name", ["cox_random", "cox_erm", "cox_entmin", "cox_ssl", "cox_moco", "cox_aligned"])
def test_baselines_train_one_step(name, small_cox_sim, cox_method, cox_dm):
    ds = small_cox_sim(seed=0)
    meth = cox_method(ds, name=name)
    dm = cox_dm(ds)
    meth.build_cache(dm.split_batch("train"), len(ds))
    before = {k: v.clone() for k, v in meth.state_dict().items()}
    meth.train()
    out = meth.loss(next(iter(dm.train_dataloader())))
    assert torch.isfinite(out.loss)
    if name == "cox_random":
        assert meth.training_step(next(iter(dm.train_dataloader())), 0) is None
        return
    opt = meth.configure_optimizers()
    out.loss.backward()
    opt.step()
    assert any(not torch.equal(before[k], v) for k, v in meth.state_dict().items() if k.startswith("oom_encoder"))


def test_entropy_of_logits_closed_forms_and_float64_loop():
    from mmib.methods.cox.baselines import entropy_of_logits

    assert float(entropy_of_logits(torch.zeros(3, 10))) == pytest.approx(math.log(10))
    assert float(entropy_of_logits(torch.tensor([[0.0, 1e4]]))) == pytest.approx(0.0, abs=1e-12)
    empty = torch.zeros(0, 4, requires_grad=True)
    e = entropy_of_logits(empty)
    assert float(e.detach()) == 0.0 and e.requires_grad  # no rows: zero, still in the graph
    z = torch.randn(5, 4, dtype=torch.float64)
    ref = 0.0
    for row in z.tolist():
        p = [math.exp(v) / sum(math.exp(u) for u in row) for v in row]
        ref -= sum(q * math.log(q) for q in p) / len(z)
    assert float(entropy_of_logits(z)) == pytest.approx(ref, rel=1e-12)


def test_symmetric_nt_xent_against_a_float64_loop():
    from mmib.methods.cox.baselines import nt_xent

    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(6, 3, generator=g, dtype=torch.float64), torch.randn(6, 3, generator=g, dtype=torch.float64)
    tau = 0.3
    qn = [r / r.norm() for r in q]
    kn = [r / r.norm() for r in k]
    s = [[float(a @ b) / tau for b in kn] for a in qn]

    def ce(rows):
        return sum(-rows[i][i] + math.log(sum(math.exp(v) for v in rows[i])) for i in range(6)) / 6

    ref = 0.5 * (ce(s) + ce([list(c) for c in zip(*s)]))
    assert float(nt_xent(q, k, tau)) == pytest.approx(ref, rel=1e-12)
    assert float(nt_xent(q, 2.0 * q, tau)) < float(nt_xent(q, k, tau))  # aligned views: a smaller loss
