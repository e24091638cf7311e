"""Worker for tests/test_distributed.py, importable by name in processes started with spawn.

It lives in its own top-level module (``tests/`` is on pytest's ``pythonpath``) because another installed package
ships a top-level ``tests`` package that would shadow ``tests.test_distributed`` in the child processes.

Every objective in :data:`GATHERED_OBJECTIVES` is built by :func:`_make` as a module that takes a mapping of
``_n_modalities(name)`` tensors (N, D) and returns a :class:`~mmib.objectives.LossOutput`: the alignment objectives
directly, the others (NT-Xent, CoMM, SupCon) through small adapters that assign the tensors to their arguments.
"""

import inspect
import os

import torch
import torch.distributed as dist
from torch import nn

from mmib import objectives
from mmib.objectives.comm import CoMMLoss
from mmib.objectives.ntxent import NTXentLoss
from mmib.objectives.supcon import SupConLoss
from mmib.utils.dist import rank

WORLD = 2
N_LOCAL, D = 6, 8
#: per-objective settings for the comparison (deterministic negatives: Symile's O(N²) form)
SETTINGS = {"symile": {"negatives": "n_squared"}}
#: labels of the global batch for SupCon: with one view, the positives of some anchors live only on the other
#: process (rank 0 holds labels 2 and 3 once, rank 1 holds their partners), so the labels must be gathered too
SUPCON_LABELS = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 4, 4, 5, 5])
assert SUPCON_LABELS.numel() == WORLD * N_LOCAL


class _CoMMOnMapping(nn.Module):
    """CoMM on 6 tensors: (m0, m1) = the fused views Z', Z''; (m2, m3), (m4, m5) = two modalities' (Z'_i, Z''_i)."""

    def __init__(self, gather: bool):
        super().__init__()
        self.loss = CoMMLoss(temperature=0.2, terms="all", reduction="sum", gather_distributed=gather)

    def forward(self, z):
        return self.loss((z["m0"], z["m1"]), {"a": (z["m2"], z["m3"]), "b": (z["m4"], z["m5"])})


class _SupConOnMapping(nn.Module):
    """SupCon on the given views, with :data:`SUPCON_LABELS` (this process's slice of them) or without labels."""

    def __init__(self, gather: bool, labelled: bool):
        super().__init__()
        self.loss = SupConLoss(0.2, base_temperature=0.07, gather_distributed=gather)
        self.labelled = labelled

    def forward(self, z):
        views = [z[k] for k in sorted(z)]
        if not self.labelled:
            return self.loss(views)
        n = views[0].shape[0]
        start = rank() * n if n < SUPCON_LABELS.numel() else 0  # a local slice on each process, else the batch
        return self.loss(views, SUPCON_LABELS[start : start + n])


#: name → (factory(gather) → module on a mapping of tensors, number of input tensors)
OTHER_OBJECTIVES = {
    "ntxent": (lambda g: NTXentLoss(0.2, gather_distributed=g), 2),
    "comm": (lambda g: _CoMMOnMapping(g), 6),
    "supcon_labels_1view": (lambda g: _SupConOnMapping(g, labelled=True), 1),
    "supcon_labels_3views": (lambda g: _SupConOnMapping(g, labelled=True), 3),
    "supcon_unlabelled_2views": (lambda g: _SupConOnMapping(g, labelled=False), 2),
}
GATHERED_OBJECTIVES = [
    *(n for n, c in objectives.ALIGNMENT_OBJECTIVES.items() if "gather_distributed" in inspect.signature(c).parameters),
    *OTHER_OBJECTIVES,
]


def _inputs(m: int):
    g = torch.Generator().manual_seed(11)
    return {f"m{i}": torch.randn(WORLD * N_LOCAL, D, generator=g, dtype=torch.float64) for i in range(m)}


def _n_modalities(name: str) -> int:
    return OTHER_OBJECTIVES[name][1] if name in OTHER_OBJECTIVES else 3


def _make(name: str, gather: bool):
    torch.manual_seed(0)
    if name in OTHER_OBJECTIVES:
        return OTHER_OBJECTIVES[name][0](gather).double()
    cls = objectives.ALIGNMENT_OBJECTIVES[name]
    params = inspect.signature(cls.__init__).parameters
    kw = dict(SETTINGS.get(name, {}))
    kw["gather_distributed"] = gather
    if "n_modalities" in params:
        kw["n_modalities"] = _n_modalities(name)
    if "embed_dim" in params:
        kw["embed_dim"] = D
    return cls(**kw).double()


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    results = {}
    for name in GATHERED_OBJECTIVES:
        full = _inputs(_n_modalities(name))
        local = {k: v[rank * N_LOCAL : (rank + 1) * N_LOCAL].clone().requires_grad_(True) for k, v in full.items()}
        obj = _make(name, gather=True)
        out = obj(local)
        out.loss.backward()
        results[name] = {"loss": out.loss.detach(), "grads": {k: v.grad for k, v in local.items()}}
    torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.barrier()
    dist.destroy_process_group()
