"""Numerical robustness of every alignment objective: degenerate embeddings, float32 with τ = 0.01, extreme
temperatures, nearly collinear embeddings; property tests (hypothesis) for finiteness and batch-permutation
invariance. Then the other objectives (CoMM, NT-Xent, SupCon, FactorCL, VIB, OMIB, IBMA, COX, R/U/S): finite loss
and gradients in float32 on degenerate inputs, at extreme temperatures and with batches of 1 or 2."""

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmib import objectives
from mmib.objectives.comm import CoMMLoss
from mmib.objectives.cox import AnchorKL, ConnectionLoss, gaussian_kl_to_prior, mmd_rbf
from mmib.objectives.factorcl import CLUB_TERMS, FACTORCL_TERMS, FactorCLLoss
from mmib.objectives.ibma import IBBLoss, class_means, update_q
from mmib.objectives.ntxent import NTXentLoss
from mmib.objectives.omib import OMFLoss, dynamic_weight
from mmib.objectives.rus import RUSLoss, neg_sim_loss
from mmib.objectives.supcon import SupConLoss
from mmib.objectives.vib import VIBLoss, gaussian_kl_standard

NAMES = sorted(objectives.ALIGNMENT_OBJECTIVES)


def make(name: str, m: int, d: int, **kw):
    cls = objectives.ALIGNMENT_OBJECTIVES[name]
    params = inspect.signature(cls.__init__).parameters
    if "n_modalities" in params:
        kw.setdefault("n_modalities", m)
    if "embed_dim" in params:
        kw.setdefault("embed_dim", d)
    if name == "symile":
        kw.setdefault("negatives", "n_squared")  # deterministic negatives for the invariance property
    return cls(**{k: v for k, v in kw.items() if k in params})


def n_mod(name: str) -> int:
    return 3 if name == "triangle" else 4


def finite_loss_and_grad(obj, zs: dict) -> None:
    zs = {k: v.clone().requires_grad_(True) for k, v in zs.items()}
    out = obj(zs)
    assert torch.isfinite(out.loss), out
    out.loss.backward()
    for k, v in zs.items():
        assert torch.isfinite(v.grad).all(), f"gradient of {k}"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("case", ["zeros", "all_equal", "repeated_rows", "collinear", "huge", "tiny"])
def test_degenerate_embeddings_give_finite_loss_and_gradient(name, case):
    m, n, d = n_mod(name), 16, 32
    g = torch.Generator().manual_seed(0)
    base = torch.randn(n, d, generator=g)
    if case == "zeros":
        zs = {f"m{i}": torch.zeros(n, d) for i in range(m)}
    elif case == "all_equal":
        zs = {f"m{i}": torch.ones(n, d) for i in range(m)}
    elif case == "repeated_rows":
        zs = {f"m{i}": base[:1].repeat(n, 1) for i in range(m)}
    elif case == "collinear":  # nearly collinear across modalities (OVA-IB solve, GRAM determinant)
        zs = {f"m{i}": base + 1e-6 * torch.randn(n, d, generator=g) for i in range(m)}
    elif case == "huge":
        zs = {f"m{i}": 1e6 * torch.randn(n, d, generator=g) for i in range(m)}
    else:
        zs = {f"m{i}": 1e-12 * torch.randn(n, d, generator=g) for i in range(m)}
    finite_loss_and_grad(make(name, m, d, temperature=0.01), zs)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("temperature", [1e-3, 0.01, 100.0])
def test_extreme_temperatures_float32(name, temperature):
    m, n, d = n_mod(name), 32, 16
    g = torch.Generator().manual_seed(1)
    zs = {f"m{i}": torch.randn(n, d, generator=g, dtype=torch.float32) for i in range(m)}
    finite_loss_and_grad(make(name, m, d, temperature=temperature), zs)


@pytest.mark.parametrize("name", NAMES)
def test_invalid_temperature_is_an_error(name):
    with pytest.raises(ValueError, match="temperature"):
        make(name, n_mod(name), 8, temperature=0.0)
    with pytest.raises(ValueError, match="temperature"):
        make(name, n_mod(name), 8, temperature=float("nan"))


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=15, deadline=None)
@given(n=st.integers(2, 12), d=st.integers(2, 12), seed=st.integers(0, 10_000), scale=st.floats(1e-3, 1e3))
def test_property_finite_and_invariant_to_batch_permutation(name, n, d, seed, scale):
    m = n_mod(name)
    g = torch.Generator().manual_seed(seed)
    zs = {f"m{i}": scale * torch.randn(n, d, generator=g, dtype=torch.float64) for i in range(m)}
    torch.manual_seed(0)
    obj = make(name, m, d, temperature=0.1).double()
    out = obj(zs)
    assert torch.isfinite(out.loss)
    perm = torch.randperm(n, generator=g)
    out_p = obj({k: v[perm] for k, v in zs.items()})
    torch.testing.assert_close(out_p.loss, out.loss, atol=1e-9 * max(1.0, abs(float(out.loss))), rtol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_scorer_is_equivariant_to_candidate_permutation(name):
    m, n, d = n_mod(name), 10, 8
    g = torch.Generator().manual_seed(3)
    zs = {f"m{i}": torch.randn(n, d, generator=g, dtype=torch.float64) for i in range(m)}
    obj = make(name, m, d).double()
    q = {k: v for k, v in zs.items() if k != "m0"}
    s = obj.score(q, zs["m0"])
    assert s.shape == (n, n) and torch.isfinite(s).all()
    perm = torch.randperm(n, generator=g)
    torch.testing.assert_close(obj.score(q, zs["m0"][perm]), s[:, perm])


# ---------------------------------------------------------------------------------------------------------------
# The other objectives (CoMM, NT-Xent, SupCon, FactorCL, VIB, OMIB, IBMA, COX, R/U/S): finite loss and gradient in
# float32 on degenerate inputs, at extreme temperatures and with batches of 1 or 2 (or a clear error where a batch
# that small is invalid for the objective).
# ---------------------------------------------------------------------------------------------------------------

D, C = 8, 3  # embedding size, number of classes
CASES = ["zeros", "all_equal", "repeated_rows", "huge", "tiny"]


class Inputs:
    """Makes the float32 input tensors of one case and keeps those that must receive a finite gradient."""

    def __init__(self, case: str, n: int, seed: int = 0):
        self.case, self.n = case, n
        self.g = torch.Generator().manual_seed(seed)
        self.leaves: list[torch.Tensor] = []
        self.modules: list[torch.nn.Module] = []

    def emb(self, d: int = D, track: bool = True, bounded: bool = False) -> torch.Tensor:
        """An (n, d) tensor of the case; ``bounded`` caps the "huge" case at scale 10 (log-variances: e^(1e6)
        is not a log-variance any encoder emits); ``track=False`` for inputs that carry no gradient by design."""
        n, g = self.n, self.g
        if self.case == "zeros":
            x = torch.zeros(n, d)
        elif self.case == "all_equal":
            x = torch.ones(n, d)
        elif self.case == "repeated_rows":
            x = torch.randn(1, d, generator=g).repeat(n, 1)
        elif self.case == "huge":
            x = (10.0 if bounded else 1e6) * torch.randn(n, d, generator=g)
        elif self.case == "tiny":
            x = 1e-12 * torch.randn(n, d, generator=g)
        else:
            x = torch.randn(n, d, generator=g)
        assert x.dtype == torch.float32
        if track:
            x.requires_grad_(True)
            self.leaves.append(x)
        return x

    def labels(self, n_classes: int = C) -> torch.Tensor:
        return torch.arange(self.n) % n_classes


def _ntxent(inp: Inputs, t):
    return NTXentLoss(*([] if t is None else [t]))([inp.emb(), inp.emb()]).loss


def _comm(inp: Inputs, t):
    loss = CoMMLoss(*([] if t is None else [t]))
    return loss((inp.emb(), inp.emb()), {"a": (inp.emb(), inp.emb()), "b": (inp.emb(), inp.emb())}).loss


def _supcon(n_views: int, labelled: bool):
    def build(inp: Inputs, t):
        loss = SupConLoss(*([] if t is None else [t]))
        views = [inp.emb() for _ in range(n_views)]
        # one view: every label at least twice where the batch allows it (n // 2 classes)
        labels = (torch.arange(inp.n) // 2 if n_views == 1 else inp.labels()) if labelled else None
        return loss(views, labels).loss
    return build


def _factorcl(club_off_diagonal: bool):
    def build(inp: Inputs, t):
        torch.manual_seed(0)
        loss = FactorCLLoss({k: (D, D) for k in FACTORCL_TERMS}, critic_hidden=(16,),
                            club_off_diagonal=club_off_diagonal)
        inp.modules.append(loss)
        return loss({k: (inp.emb(), inp.emb()) for k in FACTORCL_TERMS}).loss
    return build


def _factorcl_club_critic(inp: Inputs, t):
    torch.manual_seed(0)
    loss = FactorCLLoss({k: (D, D) for k in FACTORCL_TERMS}, critic_hidden=(16,))
    inp.modules.append(loss)
    return loss.club_critic_loss({k: (inp.emb(), inp.emb()) for k in CLUB_TERMS}).loss


def _kl(inp: Inputs):
    return gaussian_kl_standard(inp.emb(), inp.emb(bounded=True))


def _vib(task: str):
    def build(inp: Inputs, t):
        loss = VIBLoss(1e-3, task)
        out = inp.emb(C)
        target = inp.labels() if task == "classification" else inp.emb(C, track=False)
        center = inp.emb(C, track=False)[0] if task == "svdd" else None
        return loss(out, None if task == "svdd" else target, [_kl(inp), _kl(inp)], center=center).loss
    return build


def _omf(inp: Inputs, t):
    """OMIB's L_OMF with r from the TRB/fused divergences (eq. 11): the zero cases make a KL and the divergences 0."""
    fused = inp.emb(C)
    trbs = [inp.emb(C, track=False), inp.emb(C, track=False)]
    r, _ = dynamic_weight(trbs, fused, "classification")
    assert torch.isfinite(r).all(), r
    return OMFLoss(1e-3)(fused, inp.labels(), [_kl(inp), _kl(inp)], r).loss


def _ibb(prior: tuple[float, ...]):
    """IBMA's bound with centroids and Q computed from the batch, as the method does, and the given class prior
    (one with a zero: a class absent from the split it was counted on; 1e-300 is 0 in float32)."""
    def build(inp: Inputs, t):
        return _ibb_loss(inp, t, torch.tensor(prior))
    return build


def _ibb_loss(inp: Inputs, t, prior: torch.Tensor):
    loss = IBBLoss(0.5, *([] if t is None else [t]))
    y = inp.labels()
    reps, fused = [inp.emb(), inp.emb()], inp.emb()
    xs = [inp.emb(track=False), inp.emb(track=False)]
    fc, ffc = [class_means(z, y, C) for z in reps], class_means(fused, y, C)
    ic = [class_means(x, y, C) for x in xs]
    qs = [update_q(loss.assign(z, c)[0], y, C) for z, c in zip(reps, fc)]
    qf = update_q(loss.assign(fused, ffc)[0], y, C)
    return loss(reps, fused, xs, y, fc, ffc, ic, prior, qs, qf).loss


def _anchor_kl(direction: str):
    def build(inp: Inputs, t):
        return AnchorKL(direction=direction, stopgrad_anchor=False)(inp.emb(C), inp.emb(C)).loss
    return build


def _connection(inp: Inputs, t):
    return ConnectionLoss()(inp.emb(), [inp.emb(), inp.emb()]).loss


def _mmd(inp: Inputs, t):
    return mmd_rbf(inp.emb(), inp.emb())


def _cox_kl(inp: Inputs, t):
    return gaussian_kl_to_prior(inp.emb(), inp.emb(bounded=True))


def _rus(inp: Inputs, t):
    kw = {} if t is None else {"temperature_r": t, "temperature_s": t}
    loss = RUSLoss(orth_exclude=[("R_a", "R_b")], **kw)
    comps = {k: inp.emb() for k in ("R_a", "R_b", "U_a", "U_b", "S")}
    cross = {"a": neg_sim_loss(comps["U_a"], inp.emb(), "abs"), "b": neg_sim_loss(comps["U_b"], inp.emb(), "signed")}
    recon = {"a": (inp.emb(4), inp.emb(4, track=False))}
    return loss({"a": comps["R_a"], "b": comps["R_b"]}, (comps["S"], inp.emb()), comps, recon, cross).loss


@dataclass
class Entry:
    build: Callable[[Inputs, float | None], torch.Tensor]
    has_temperature: bool = False
    min_batch: int = 1
    #: the error a batch below ``min_batch`` must raise (regex)
    batch_error: str | None = None


OTHER = {
    "ntxent": Entry(_ntxent, True, 2, "at least 2 samples"),
    "comm": Entry(_comm, True, 2, "CoMMLoss: needs at least 2 samples"),
    "supcon_labels_1view": Entry(_supcon(1, True), True, 2, "an anchor has no positive"),
    "supcon_labels_2views": Entry(_supcon(2, True), True),
    "supcon_unlabelled_2views": Entry(_supcon(2, False), True),
    "factorcl": Entry(_factorcl(False), False, 2, "FactorCLLoss: needs at least 2 samples"),
    "factorcl_club_off_diagonal": Entry(_factorcl(True), False, 2, "FactorCLLoss: needs at least 2 samples"),
    "factorcl_club_critic": Entry(_factorcl_club_critic),
    "vib_classification": Entry(_vib("classification")),
    "vib_regression": Entry(_vib("regression")),
    "vib_svdd": Entry(_vib("svdd")),
    "omib_omf": Entry(_omf),
    "ibma_ibb": Entry(_ibb((1 / 3, 1 / 3, 1 / 3)), True),
    "ibma_ibb_prior_with_empty_class": Entry(_ibb((0.5, 0.5, 0.0)), True),
    "cox_anchor_kl_paper": Entry(_anchor_kl("paper")),
    "cox_anchor_kl_forward": Entry(_anchor_kl("forward")),
    "cox_connection": Entry(_connection),
    "cox_mmd": Entry(_mmd),
    "cox_gaussian_kl": Entry(_cox_kl),
    "rus": Entry(_rus, True),
}
WITH_TEMPERATURE = sorted(k for k, e in OTHER.items() if e.has_temperature)


def check_finite(name: str, case: str, n: int = 8, temperature: float | None = None) -> None:
    inp = Inputs(case, n)
    loss = OTHER[name].build(inp, temperature)
    assert loss.dim() == 0 and loss.dtype == torch.float32, (name, loss)
    assert torch.isfinite(loss), f"{name}/{case}/τ={temperature}: loss {loss}"
    loss.backward()
    assert inp.leaves, name
    for i, x in enumerate(inp.leaves):
        assert x.grad is not None, f"{name}: input {i} got no gradient"
        assert torch.isfinite(x.grad).all(), f"{name}/{case}/τ={temperature}: gradient of input {i}"
    for mod in inp.modules:
        for pname, p in mod.named_parameters():
            if p.grad is not None:
                assert torch.isfinite(p.grad).all(), f"{name}/{case}: gradient of parameter {pname}"


@pytest.mark.parametrize("name", sorted(OTHER))
@pytest.mark.parametrize("case", CASES)
def test_other_objectives_finite_on_degenerate_inputs(name, case):
    check_finite(name, case)


@pytest.mark.parametrize("name", WITH_TEMPERATURE)
@pytest.mark.parametrize("case", ["random", "zeros", "repeated_rows", "huge"])
@pytest.mark.parametrize("temperature", [1e-3, 0.01, 100.0])
def test_other_objectives_finite_at_extreme_temperatures(name, case, temperature):
    check_finite(name, case, temperature=temperature)


@pytest.mark.parametrize("name", WITH_TEMPERATURE)
@pytest.mark.parametrize("temperature", [0.0, -0.1, float("nan"), float("inf")])
def test_other_objectives_reject_invalid_temperatures(name, temperature):
    with pytest.raises(ValueError, match="temperature"):
        OTHER[name].build(Inputs("random", 4), temperature)


@pytest.mark.parametrize("name", sorted(OTHER))
@pytest.mark.parametrize("n", [1, 2])
@pytest.mark.parametrize("case", ["random", "zeros"])
def test_other_objectives_small_batches(name, n, case):
    entry = OTHER[name]
    if n >= entry.min_batch:
        check_finite(name, case, n=n)
    else:
        with pytest.raises(ValueError, match=entry.batch_error):
            OTHER[name].build(Inputs(case, n), None)
