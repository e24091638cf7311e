import inspect

import pytest
import torch

from mmib.objectives import ALIGNMENT_OBJECTIVES


def test_registry_names():
    assert set(ALIGNMENT_OBJECTIVES) == {"clip", "clip_ib", "symile", "gram", "triangle", "ova_ib"}


@pytest.mark.parametrize("name", sorted(ALIGNMENT_OBJECTIVES))
def test_contract(name):
    cls = ALIGNMENT_OBJECTIVES[name]
    params = inspect.signature(cls).parameters
    for shared in ("temperature", "learn_temperature", "positive_in_denominator", "gather_distributed"):
        assert shared in params, f"{name} lacks the shared flag {shared}"
    with pytest.raises(ValueError, match="temperature"):
        cls(temperature=0)
    obj = cls()
    zs = {k: torch.randn(6, 8, requires_grad=True) for k in ("a", "b", "c")}
    out = obj(zs)
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    out.loss.backward()
    assert all(torch.isfinite(z.grad).all() for z in zs.values())
    assert all(not t.requires_grad for t in out.terms.values())
    s = obj.score({"a": torch.randn(4, 8), "b": torch.randn(4, 8)}, torch.randn(5, 8))
    assert s.shape == (4, 5) and torch.isfinite(s).all()
