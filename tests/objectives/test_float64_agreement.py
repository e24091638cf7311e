"""Every objective with a temperature, in float64, against its float64 loop reference to 1e-12 relative — at a
usual temperature and at one below the former hard floor of 1e-3, fixed and learned (the learned temperature's
initial value must reach the loss exactly: it is held as a Python float, not a float32 tensor)."""

from __future__ import annotations

import objectives_reference as ref
import pytest
import torch

from mmib.objectives import (
    GRAMLoss,
    OVAIBLoss,
    PairwiseCLIPIBLoss,
    PairwiseCLIPLoss,
    SymileLoss,
    TriangleLoss,
)
from mmib.objectives.base import Temperature
from mmib.objectives.comm import CoMMLoss
from mmib.objectives.gram import GRAM_RIDGE, DirectTemperature
from mmib.objectives.ntxent import NTXentLoss
from mmib.objectives.rus import RUSLoss
from mmib.objectives.supcon import SupConLoss
from mmib.objectives.symile import dense_mip_factor

RTOL = 1e-12
TAUS = [0.07, 5e-4]


def _close(got: torch.Tensor, want: torch.Tensor) -> None:
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, want.to(got.dtype), rtol=RTOL, atol=0.0)


def _zs(n: int, m: int, d: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, d, generator=g, dtype=torch.float64) for _ in range(m)]


def _named(zs):
    return {f"m{i}": z for i, z in enumerate(zs)}


@pytest.mark.parametrize("tau", TAUS)
@pytest.mark.parametrize("learn", [False, True])
def test_alignment_objectives_float64(tau, learn):
    zs = _zs(4, 3, 5)
    cases = [
        (PairwiseCLIPLoss(tau, learn), ref.clip_loss(zs, tau)),
        (PairwiseCLIPIBLoss(tau, learn, beta=0.5), ref.clip_ib_loss(zs, tau, 0.5)),
        (OVAIBLoss(tau, learn, beta=0.5, ridge=1e-6), ref.ova_ib_loss(zs, tau, 0.5, ridge=1e-6)[0]),
        (GRAMLoss(tau, learn), ref.gram_loss(zs, tau, 0.1, ridge=GRAM_RIDGE)),
        (TriangleLoss(tau, learn), ref.triangle_loss(zs, tau, 0.1)),
        (SymileLoss(tau, learn, negatives="n_squared", mip_scale="none"), ref.symile_n_squared_loss(zs, tau)),
        (SymileLoss(tau, learn, negatives="n_squared"),
         ref.symile_n_squared_loss(zs, tau, factor=dense_mip_factor(5, 3))),
        (SymileLoss(tau, learn, negatives="n", seed=3), ref.symile_n_loss(zs, tau, 3, factor=dense_mip_factor(5, 3))),
    ]
    for loss_fn, want in cases:
        _close(loss_fn.double()(_named(zs)).loss, want)


@pytest.mark.parametrize("tau", TAUS)
def test_symile_dense_scale_m4_float64(tau):
    zs = _zs(5, 4, 3, seed=1)
    out = SymileLoss(tau, True, negatives="n", seed=0).double()(_named(zs))
    _close(out.loss, ref.symile_n_loss(zs, tau, 0, factor=dense_mip_factor(3, 4)))


@pytest.mark.parametrize("tau", TAUS)
def test_self_supervised_objectives_float64(tau):
    a, b, c = _zs(5, 3, 4, seed=2)
    _close(NTXentLoss(tau, learn_temperature=True).double()({"a": a, "b": b}).loss, ref.nt_xent_ref(a, b, tau))
    labels = torch.tensor([0, 1, 0, 2, 1])
    _close(SupConLoss(tau, base_temperature=0.07, learn_temperature=True).double()([a, b], labels).loss,
           ref.supcon_ref([a, b], labels, tau, 0.07))
    comm = CoMMLoss(tau).double()((a, b), {"x": (c, c.flip(0))}).loss
    want = ref.nt_xent_ref(a, b, tau) + 0.5 * (ref.nt_xent_ref(c, b, tau) + ref.nt_xent_ref(c.flip(0), a, tau))
    _close(comm, want)
    s2 = b + 0.1
    rus = RUSLoss(temperature_r=tau, temperature_s=tau).double()(
        {"a": a, "b": b}, (c, s2), {"R_a": a, "S": c}, {"a": (a[:, :2], b[:, :2])}, {"a": a.new_zeros(())})
    _close(rus.terms["L_R"], ref.info_nce_ref(a, b, tau))
    _close(rus.terms["L_S"], ref.info_nce_ref(c, s2, tau))


def test_temperature_floor_is_configurable_and_defaults_below_small_values():
    # a learned τ is clamped at min_temperature; the default floor is min(1e-3, τ0)
    for cls, name in ((Temperature, "log_scale_offset"), (DirectTemperature, "tau_offset")):
        t = cls(1e-4, True)
        assert t.min_temperature == pytest.approx(1e-4) and t.value == pytest.approx(1e-4, rel=1e-6)
        t = cls(0.07, True, min_temperature=1e-5)
        with torch.no_grad():
            getattr(t, name).fill_(100.0 if cls is Temperature else -1.0)  # push τ far below the floor
        assert t.value == pytest.approx(1e-5, rel=1e-5)
        t = cls(0.07, True)
        with torch.no_grad():
            getattr(t, name).fill_(100.0 if cls is Temperature else -1.0)
        assert t.value == pytest.approx(1e-3, rel=1e-5)
        for bad in (0.0, -1e-4, 0.5):
            with pytest.raises(ValueError, match="min_temperature"):
                cls(0.07, True, min_temperature=bad)
    # a fixed τ is used as given, however small
    assert float(Temperature(1e-6).scale()) == pytest.approx(1e6, rel=1e-6)
    assert float(DirectTemperature(1e-6, False).scale()) == pytest.approx(1e6, rel=1e-6)
    # every objective with a learned temperature takes the floor as an option
    for cls in (PairwiseCLIPLoss, PairwiseCLIPIBLoss, OVAIBLoss, GRAMLoss, TriangleLoss, SymileLoss, NTXentLoss, SupConLoss):
        obj = cls(temperature=0.07, learn_temperature=True, min_temperature=2e-5)
        assert obj.temperature.min_temperature == pytest.approx(2e-5)


def test_old_checkpoint_keys_load():
    t = Temperature(0.07, True)
    t.load_state_dict({"log_scale": torch.tensor(3.0)})
    assert float(t.log_scale.detach()) == pytest.approx(3.0)
    d = DirectTemperature(0.07, True)
    d.load_state_dict({"tau": torch.tensor(0.05)})
    assert d.value == pytest.approx(0.05)
