import math
import os
import shutil
import warnings

import objectives_reference as ref
import pytest
import torch
from objectives_reference import assert_matches

from mmib.objectives import GRAMLoss
from mmib.objectives.gram import DirectTemperature


def _named(zs):
    return {f"m{i}": z for i, z in enumerate(zs)}


@pytest.mark.parametrize("n,m,d", [(3, 2, 4), (4, 3, 5), (3, 5, 6)])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_matches_float64_loop_reference(n, m, d, smoothing):
    zs = [torch.randn(n, d, dtype=torch.float64, requires_grad=True) for _ in range(m)]
    out = GRAMLoss(temperature=0.2, label_smoothing=smoothing)(_named(zs))
    assert_matches(out.loss, ref.gram_loss(zs, 0.2, smoothing), zs, rtol=1e-6, atol=1e-8)


def test_single_anchor_and_decoupled_match_reference():
    zs = [torch.randn(4, 5, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    out = GRAMLoss(temperature=0.3, anchor="m1")(_named(zs))
    assert_matches(out.loss, ref.gram_loss(zs, 0.3, 0.1, anchors=[1]), zs, rtol=1e-6, atol=1e-8)
    out = GRAMLoss(temperature=0.3, label_smoothing=0.0, positive_in_denominator=False)(_named(zs))
    assert_matches(out.loss, ref.gram_loss(zs, 0.3, 0.0, pid=False), zs, rtol=1e-6, atol=1e-8)


def test_zero_and_repeated_embeddings_no_nan():
    zs = {k: torch.zeros(4, 3, requires_grad=True) for k in "abc"}
    out = GRAMLoss()(zs)
    out.loss.backward()
    assert torch.isfinite(out.loss) and all(torch.isfinite(t.grad).all() for t in zs.values())
    z = torch.randn(4, 3, requires_grad=True)
    out = GRAMLoss()({"a": z, "b": z, "c": z})
    out.loss.backward()
    assert torch.isfinite(out.loss) and torch.isfinite(z.grad).all()


def test_learned_direct_temperature():
    loss_fn = GRAMLoss()
    assert isinstance(loss_fn.temperature, DirectTemperature)
    assert loss_fn.temperature.tau.requires_grad and math.isclose(
        loss_fn.temperature.value, 0.07, rel_tol=1e-6
    )
    loss_fn(_named([torch.randn(5, 4) for _ in range(3)])).loss.backward()
    assert loss_fn.temperature.tau_offset.grad is not None
    fixed = GRAMLoss(learn_temperature=False)
    assert not list(fixed.parameters())
    with torch.no_grad():
        loss_fn.temperature.tau_offset.fill_(-1.0)  # τ < 0: clamped, never a division by a non-positive number
    assert math.isclose(float(loss_fn.temperature.scale().detach()), 1e3, rel_tol=1e-6)


def test_bad_args_gather_noop_and_score():
    with pytest.raises(ValueError, match="temperature"):
        GRAMLoss(temperature=0)
    with pytest.raises(ValueError, match="label_smoothing"):
        GRAMLoss(label_smoothing=1.5)
    with pytest.raises(ValueError, match="label_smoothing must be 0 when positive_in_denominator=False"):
        GRAMLoss(positive_in_denominator=False)
    with pytest.raises(ValueError, match="anchor"):
        GRAMLoss(anchor="x")({"a": torch.randn(3, 2), "b": torch.randn(3, 2)})
    zs = _named([torch.randn(5, 4) for _ in range(3)])
    torch.testing.assert_close(GRAMLoss(gather_distributed=True)(zs).loss, GRAMLoss()(zs).loss)
    q = {"a": torch.randn(3, 4, dtype=torch.float64), "b": torch.randn(3, 4, dtype=torch.float64)}
    c = torch.randn(6, 4, dtype=torch.float64)
    s = GRAMLoss().score(q, c)
    assert s.shape == (3, 6)
    unit = ref.unit
    for i in range(3):
        for j in range(6):
            expected = -float(ref.volume([unit(c[j]), unit(q["a"][i]), unit(q["b"][i])]))
            assert math.isclose(float(s[i, j]), expected, rel_tol=1e-7)


@pytest.mark.skipif(shutil.which(os.environ.get("CXX", "g++")) is None, reason="torch.compile needs a C++ compiler")
def test_inductor_kernel_matches_the_float64_loop_reference():
    import mmib.objectives.projection.fused as fused

    zs = [torch.randn(5, 4, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        out = GRAMLoss(temperature=0.2, label_smoothing=0.1, kernel="inductor")(_named(zs))
    assert_matches(out.loss, ref.gram_loss(zs, 0.2, 0.1), zs, rtol=1e-6, atol=1e-8)
    assert not fused._FAILED
    with pytest.raises(ValueError, match="kernel must be one of"):
        GRAMLoss(kernel="cuda")


def test_compiled_kernel_on_the_cpu_is_the_numba_fused_pass():
    # "compiled" = the fastest compiled code for the device: on the CPU with numba, the default's fused pass
    from mmib.objectives.projection import numba_kernels

    if not numba_kernels.available():
        pytest.skip("numba is not installed")
    zs = [torch.randn(6, 4, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    a = GRAMLoss(temperature=0.2, label_smoothing=0.1, kernel="compiled")(_named(zs)).loss
    b = GRAMLoss(temperature=0.2, label_smoothing=0.1)(_named(zs)).loss
    torch.testing.assert_close(a, b, rtol=0, atol=0)
