"""mmib.objectives.projection.layout: cache blocks, kernel names, the inputs of the multi-anchor Functions and the
profiler labels of the passes."""

import pytest
import torch

import mmib.objectives.projection.layout as layout
from mmib.objectives import OVAIBLoss
from mmib.objectives.projection import numba_kernels
from mmib.objectives.projection.layout import (
    KERNEL_CHOICES,
    check_kernel,
    coefficient_columns,
    flat_anchor_inputs,
    one_vs_rest_inputs,
    row_blocks,
)


@pytest.mark.parametrize("nt,na,block", [(10, 3, 7), (10, 3, 9), (5, 40, 7), (1, 1, 32768), (7, 0, 4)])
def test_row_blocks_cover_the_rows_once_in_order(nt, na, block, monkeypatch):
    monkeypatch.setattr(layout, "BLOCK_ELEMENTS", block)
    blocks = row_blocks(nt, na, torch.device("cpu"))
    step = max(1, block // max(na, 1))
    assert [b.start for b in blocks] == list(range(0, nt, step))
    assert [i for b in blocks for i in range(b.start, b.stop)] == list(range(nt))


def test_check_kernel_accepts_the_choices_and_refuses_the_rest():
    assert KERNEL_CHOICES == ("eager", "torch", "compiled", "inductor")
    for k in KERNEL_CHOICES:
        assert check_kernel(k) == k
    with pytest.raises(ValueError, match="kernel must be one of"):
        check_kernel("fast")


def test_coefficient_columns_index_anchor_row_column_candidate():
    linv = torch.randn(2, 5, 3, 3, dtype=torch.float64)  # (A, Nt, k, k)
    cols = coefficient_columns(linv, torch.float32)
    assert cols.shape == (2, 3, 3, 5, 1) and cols.dtype == torch.float32 and cols.is_contiguous()
    assert torch.equal(cols[1, 2, 0, :, 0], linv[1, :, 2, 0].float())


@pytest.mark.parametrize("gathered", [False, True])
def test_one_vs_rest_inputs_are_the_cross_products_norms_and_tuple_grams(gathered):
    g = torch.Generator().manual_seed(3)
    zs = [torch.randn(4, 6, generator=g, dtype=torch.float64) for _ in range(4)]
    cands = [torch.cat([z, torch.randn(2, 6, generator=g, dtype=torch.float64)]) for z in zs] if gathered else zs
    anchors = [2, 0]
    cross, grams, sq = one_vs_rest_inputs(zs, cands, anchors)
    assert grams.shape == (2, len(cands[0]), 3, 3)
    for a_i, a in enumerate(anchors):
        others = [b for b in range(4) if b != a]
        for i, b in enumerate(others):
            torch.testing.assert_close(cross[a_i][i], zs[a] @ cands[b].T, rtol=0, atol=1e-12)
            for j, c in enumerate(others):
                torch.testing.assert_close(grams[a_i, :, i, j], (cands[b] * cands[c]).sum(-1), rtol=0, atol=1e-12)
        torch.testing.assert_close(sq[a_i], (zs[a] * zs[a]).sum(-1), rtol=0, atol=1e-12)


def test_flat_anchor_inputs_check_the_shapes():
    c = torch.zeros(3, 4)
    assert len(flat_anchor_inputs([[c, c], [c, c]], torch.zeros(2, 4, 2, 2), torch.zeros(2, 3), "x")) == 4
    with pytest.raises(ValueError, match="x: 2 anchors need grams"):
        flat_anchor_inputs([[c, c], [c, c]], torch.zeros(1, 4, 2, 2), torch.zeros(2, 3), "x")
    with pytest.raises(ValueError, match="x: every anchor needs k = 2 cross matrices"):
        flat_anchor_inputs([[c, c], [c]], torch.zeros(2, 4, 2, 2), torch.zeros(2, 3), "x")


@pytest.mark.parametrize("on", [False, True])
def test_profile_passes_labels_the_fused_passes_only_when_on(on, monkeypatch):
    # benchmarks/bench_alignment_objectives.py --profile turns PROFILE_PASSES on and reads these labels
    from torch.profiler import ProfilerActivity, profile

    monkeypatch.setattr(layout, "PROFILE_PASSES", on)
    zs = [torch.randn(6, 4, requires_grad=True) for _ in range(3)]
    common = {"ova_ib: gram matmuls", "ova_ib: factor", "ova_ib: backward: gram matmuls"}
    kernels = {"torch": common | {"ova_ib: score", "ova_ib: cross-entropy"}}
    if numba_kernels.available():
        kernels["eager"] = common | {"ova_ib: numba sweep"}
    for kernel, expected in kernels.items():
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            OVAIBLoss(kernel=kernel)(zs).loss.backward()
        labels = {e.key for e in prof.key_averages() if e.key.startswith("ova_ib: ")}
        assert (expected <= labels) if on else not labels
