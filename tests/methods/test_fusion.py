"""Fusion baselines: build, loss, gradients, deterministic inference, subsets, SVDD-free tasks, a small training."""

import dataclasses

import pytest
import torch

from mmib.data.spec import DatasetSpec, ModalitySpec
from mmib.errors import MMIBError
from mmib.methods.registry import build_method, get_method_class

NAMES = ["concat", "film", "bigated", "vib", "emib", "lmib", "cmib"]
SMALL = {"representation_dim": 12, "latent_dim": 6, "vae_hidden": 8, "fused_dim": 10, "head_hidden": [8]}


def small(name, extra=None):
    """SMALL updated with ``extra``, the keys that method ``name`` has (a method refuses options it lacks)."""
    own = {f.name for f in dataclasses.fields(get_method_class(name).Options)}
    return {k: v for k, v in {**SMALL, **(extra or {})}.items() if k in own}


def _spec(m=2, task="classification"):
    mods = tuple(ModalitySpec(f"v{i}", "vector", (5 + i,)) for i in range(m))
    return DatasetSpec("toy", mods, task=task, n_classes=3 if task == "classification" else None)


def _batch(spec, n=9):
    b = {"x": {ms.name: torch.randn(n, ms.shape[0]) for ms in spec.modalities}}
    b["y"] = torch.randint(0, 3, (n,)) if spec.task == "classification" else torch.randn(n)
    return b


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("m", [2, 3])
def test_baseline_interface(name, m):
    spec = _spec(m)
    meth = build_method(name, spec, small(name))
    b = _batch(spec)
    out = meth.loss(b)
    assert torch.isfinite(out.loss) and out.loss.dim() == 0
    out.loss.backward()
    assert all(p.grad is not None for p in meth.encoders.parameters())
    meth.eval()
    with torch.no_grad():
        p1, p2 = meth.predict(b), meth.predict(b)
        f = meth.fuse(b)
        sub = meth.predict(b, ["v1"])
    assert p1.shape == (9, 3) and torch.equal(p1, p2)
    assert f.shape[0] == 9 and sub.shape == (9, 3)
    assert meth.embed(b)["v0"].shape == (9, 12)


@pytest.mark.parametrize("name", ["vib", "emib", "lmib", "cmib"])
def test_variational_terms_and_beta_zero(name):
    spec = _spec()
    b = _batch(spec)
    meth = build_method(name, spec, small(name, {"beta": 0.0}))
    torch.manual_seed(1)
    out = meth.loss(b)
    kl_terms = [k for k in out.terms if k.startswith("kl")]
    assert kl_terms and all(float(out.terms[k]) >= 0 for k in kl_terms)
    task_terms = sum(float(v) for k, v in out.terms.items() if k.startswith("task"))
    assert float(out.loss.detach()) == pytest.approx(task_terms, rel=1e-5)  # β = 0: only the task losses


def test_lmib_has_unimodal_heads_and_cmib_a_fused_vib():
    spec = _spec()
    b = _batch(spec)
    lo = build_method("lmib", spec, small("lmib")).loss(b)
    co = build_method("cmib", spec, small("cmib")).loss(b)
    assert {"task_v0", "task_v1", "task_fused", "kl_v0"} <= set(lo.terms) and "kl_fused" not in lo.terms
    assert "kl_fused" in co.terms


def test_regression_task():
    spec = _spec(task="regression")
    meth = build_method("emib", spec, small("emib"))
    b = _batch(spec)
    assert torch.isfinite(meth.loss(b).loss) and meth.predict(b).shape == (9, 1)


def test_errors():
    one = DatasetSpec("one", (ModalitySpec("a", "vector", (3,)),), "classification", 2)
    with pytest.raises(MMIBError, match="at least 2"):
        build_method("film", one, small("film"))
    with pytest.raises(MMIBError, match="film_target"):
        build_method("film", _spec(), small("film", {"film_target": "audio"}))
    with pytest.raises(MMIBError, match="kl_reduction"):
        build_method("vib", _spec(), small("vib", {"kl_reduction": "max"}))
    with pytest.raises(MMIBError, match="beta"):
        build_method("vib", _spec(), small("vib", {"beta": -0.1}))
    unl = DatasetSpec("unl", _spec().modalities)
    with pytest.raises(MMIBError, match="supervised"):
        build_method("concat", unl, small("concat"))
    meth = build_method("concat", _spec(), small("concat"))
    with pytest.raises(MMIBError, match="labels"):
        meth.loss({"x": _batch(_spec())["x"]})


@pytest.mark.parametrize("name", ["concat", "vib"])
def test_learns_an_easy_task(name):
    torch.manual_seed(0)
    spec = _spec()
    meth = build_method(name, spec, small(name, {"beta": 1e-4}))
    x0, x1 = torch.randn(300, 5), torch.randn(300, 6)
    y = ((x0[:, 0] + x1[:, 0]) > 0).long()
    b = {"x": {"v0": x0, "v1": x1}, "y": y}
    opt = torch.optim.Adam(meth.parameters(), 1e-2)
    for _ in range(60):
        opt.zero_grad()
        meth.loss(b).loss.backward()
        opt.step()
    meth.eval()
    with torch.no_grad():
        acc = (meth.predict(b).argmax(1) == y).float().mean()
    assert acc > 0.85
