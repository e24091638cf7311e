"""mmib.utils.dist without a process group: one process of rank 0, gathering is a no-op, and the launch rank comes
from the launchers' environment variables (the gathered computation itself: tests/test_distributed.py, 2 processes)."""

import pytest
import torch

from mmib.utils.dist import gather_with_grad, is_dist, launch_rank, local_offset, rank, world_size


def test_without_process_group_gather_is_a_no_op():
    x = torch.randn(3, 4)
    assert gather_with_grad(x) is x


def test_without_process_group_one_process_of_rank_zero():
    assert not is_dist()
    assert world_size() == 1 and rank() == 0
    assert local_offset(16) == 0
    x = torch.randn(5, 2, requires_grad=True)
    gather_with_grad(x).sum().backward()  # the gradient flows to the input unchanged
    torch.testing.assert_close(x.grad, torch.ones_like(x))


@pytest.mark.parametrize("env, want", [
    ({}, 0),
    ({"RANK": "3"}, 3),
    ({"LOCAL_RANK": "2"}, 2),
    ({"SLURM_PROCID": "5"}, 5),
    ({"RANK": "1", "LOCAL_RANK": "0", "SLURM_PROCID": "7"}, 1),  # RANK first, then LOCAL_RANK, then SLURM_PROCID
    ({"LOCAL_RANK": "4", "SLURM_PROCID": "7"}, 4),
    ({"RANK": "", "SLURM_PROCID": "6"}, 6),  # an empty or non-numeric variable is skipped
    ({"RANK": "x"}, 0),
])
def test_launch_rank_reads_the_launchers_variables_in_order(monkeypatch, env, want):
    for var in ("RANK", "LOCAL_RANK", "SLURM_PROCID"):
        monkeypatch.delenv(var, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert launch_rank() == want
