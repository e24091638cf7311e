"""SupCon (Khosla et al. 2020, Eq. 2) against a float64 loop reference."""

import math

import pytest
import torch

from mmib.objectives.supcon import SupConLoss, supcon_loss


def ref_supcon(views, labels, tau, base=None):
    zs = [v.double() / v.double().norm(dim=1, keepdim=True) for v in views]
    n = views[0].shape[0]
    items = [(zs[v][i], (int(labels[i]) if labels is not None else i)) for v in range(len(zs)) for i in range(n)]
    total = 0.0
    for a, (za, la) in enumerate(items):
        den = sum(math.exp(float(za @ zk) / tau) for k, (zk, _) in enumerate(items) if k != a)
        pos = [k for k, (_, lk) in enumerate(items) if k != a and lk == la]
        total += -sum(float(za @ items[p][0]) / tau - math.log(den) for p in pos) / len(pos)
    loss = total / len(items)
    return loss * (tau / base) if base else loss


@pytest.mark.parametrize("n_views", [1, 2, 3])
@pytest.mark.parametrize("tau,base", [(0.07, 0.07), (0.5, None), (0.2, 0.07)])
def test_supcon_matches_loop_reference(n_views, tau, base):
    n, d = 8, 5
    labels = torch.tensor([0, 1, 0, 2, 1, 2, 0, 1])
    views = [torch.randn(n, d) for _ in range(n_views)]
    out = SupConLoss(tau, base_temperature=base)(views, labels)
    assert float(out.loss) == pytest.approx(ref_supcon(views, labels, tau, base), rel=1e-5)


def test_supcon_without_labels_is_multiview_simclr():
    views = [torch.randn(6, 4), torch.randn(6, 4)]
    got = supcon_loss(views, None, 1 / 0.3)
    assert float(got) == pytest.approx(ref_supcon(views, None, 0.3), rel=1e-5)


def test_supcon_prefers_label_clusters():
    labels = torch.arange(4).repeat(4)
    centers = torch.randn(4, 8) * 5
    clustered = centers[labels] + 0.01 * torch.randn(16, 8)
    loss = SupConLoss(0.1)
    assert float(loss([clustered], labels).loss) < float(loss([torch.randn(16, 8)], labels).loss)


def test_supcon_bad_input():
    with pytest.raises(ValueError, match="temperature"):
        SupConLoss(-1.0)
    with pytest.raises(ValueError, match="base_temperature"):
        SupConLoss(0.1, base_temperature=0.0)
    with pytest.raises(ValueError, match="2 views"):
        SupConLoss()([torch.randn(4, 3)])
    with pytest.raises(ValueError, match="integer"):
        SupConLoss()([torch.randn(4, 3)], torch.rand(4))
    with pytest.raises(ValueError, match="no positive"):
        SupConLoss()([torch.randn(3, 3)], torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="labels must have shape"):
        SupConLoss()([torch.randn(3, 3)], torch.tensor([0, 1]))
