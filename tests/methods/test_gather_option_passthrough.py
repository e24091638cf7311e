"""``method.objective.gather_distributed`` reaches every contrastive loss of CoMM, Cross, Cross+Self and SupCon
(the gathered computation itself is checked with 2 processes in tests/test_distributed.py)."""

import pytest
import torch
from omegaconf import OmegaConf

from mmib.config import compose_config
from mmib.data.synthetic.rus import make_rus
from mmib.methods.registry import build_method
from mmib.objectives.supcon import SupConLoss

SMALL = {"representation_dim": 16, "embed_dim": 8, "projection_dim": 8, "head_hidden": 16, "self_head_hidden": 16,
         "self_embed_dim": 8, "vector_tokens": 4, "fusion": {"n_heads": 2}, "augment_seed": 5}
ENC = {"vector": {"hidden": [32]}}


def _losses(method) -> list:
    """The contrastive loss modules the method trains with."""
    names = ("objective", "cross_objective", "self_objective")
    return [getattr(method, n) for n in names if hasattr(method, n)]


@pytest.mark.parametrize("name, n_losses", [("comm", 1), ("cross", 1), ("cross_self", 2), ("supcon", 1)])
@pytest.mark.parametrize("flag", [None, True])
def test_gather_distributed_is_a_config_key_passed_to_every_loss(name, n_losses, flag):
    overrides = [f"method={name}"] + ([] if flag is None else ["method.objective.gather_distributed=true"])
    cfg = OmegaConf.to_container(compose_config(overrides).method, resolve=True)
    cfg.update({k: v for k, v in SMALL.items() if k in cfg})
    ds = make_rus(n_samples=32, n_modalities=2, dim=32)
    method = build_method(name, ds.spec, cfg, ENC)
    losses = _losses(method)
    assert len(losses) == n_losses
    expected = bool(flag)  # the yaml default is false
    assert [loss.gather_distributed for loss in losses] == [expected] * n_losses, name


def test_supcon_gather_is_a_no_op_without_process_group():
    g = torch.Generator().manual_seed(0)
    views = [torch.randn(6, 4, generator=g, dtype=torch.float64) for _ in range(2)]
    y = torch.tensor([0, 1, 0, 1, 2, 2])
    for labels in (y, None):
        torch.testing.assert_close(SupConLoss(0.2, gather_distributed=True)(views, labels).loss,
                                   SupConLoss(0.2)(views, labels).loss, rtol=0, atol=0)
