"""mmib.methods.base: the Method base class's checks at construction (modality counts, labels), its helpers for
subclasses (encoders, complete rows, lengths), the optional interface and its capabilities, the non-finite loss
error, the optimizer built from ``method.optim``, and the term sums kept in a checkpoint."""

import pytest
import torch

from mmib.data.spec import DatasetSpec, ModalitySpec
from mmib.errors import MMIBError, UnknownNameError
from mmib.methods.base import Method, NonFiniteLossError
from mmib.methods.options import OptimOptions, optim_field
from mmib.objectives.base import LossOutput

SPEC = DatasetSpec("toy", (ModalitySpec("a", "vector", (3,)), ModalitySpec("b", "vector", (2,))),
                   task="classification", n_classes=2)


class Plain(Method):
    name = "plain_test"

    def __init__(self, spec=SPEC, cfg=None, encoder_cfg=None):
        super().__init__(spec, cfg or {}, encoder_cfg)
        self.w = torch.nn.Parameter(torch.ones(()))

    def loss(self, batch):
        return LossOutput(self.w * 0)


class Fusing(Plain):
    name = "fusing_test"

    def fuse(self, batch, modalities=None):
        return torch.zeros(1)


def test_construction_checks_modality_counts_and_labels():
    one = DatasetSpec("one", (ModalitySpec("a", "vector", (3,)),), task="none")
    with pytest.raises(MMIBError, match=r"needs at least 2 modalities, data set 'one' gives 1 \(a\)"):
        type("Two", (Plain,), {"min_modalities": 2})(one)
    with pytest.raises(MMIBError, match="defined for exactly 3 modalities, data set 'toy' gives 2"):
        type("Three", (Plain,), {"exact_modalities": 3})(SPEC)
    with pytest.raises(MMIBError, match="is supervised; data set 'one' has no labels"):
        type("Sup", (Plain,), {"supervised": True})(one)
    m = Plain(cfg={"x": 1}, encoder_cfg={"vector": {}})
    assert m.opts is None and m.cfg == {"x": 1}  # no Options: the method reads cfg itself
    assert m.hparams["method_name"] == "plain_test" and m.hparams["spec"] == SPEC.to_dict()


def test_typed_options_are_built_from_cfg():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Opts:
        size: int = 4
        optim: OptimOptions = optim_field(name="sgd", lr=0.5, weight_decay=0.0)

    cls = type("Typed", (Plain,), {"Options": Opts})
    assert cls(cfg={"size": 7}).opts.size == 7
    with pytest.raises(MMIBError, match="size"):
        cls(cfg={"size": "big"})
    opt = cls().configure_optimizers()
    assert isinstance(opt, torch.optim.SGD) and opt.param_groups[0]["lr"] == 0.5
    with pytest.raises(MMIBError, match="method.optim.name must be one of 'adam', 'adamw', 'sgd', got 'lbfgs'"):
        cls(cfg={"optim": {"name": "lbfgs"}})
    with pytest.raises(MMIBError, match=r"method.optim.temperature_lr must be a number > 0 \(or null\), got -1.0"):
        cls(cfg={"optim": {"temperature_lr": -1.0}}).configure_optimizers()
    assert isinstance(Plain().configure_optimizers(), torch.optim.Adam)  # no optim block: Adam defaults


def test_capabilities_and_the_unimplemented_parts():
    assert Plain.capabilities() == {"fuse": False, "components": False, "predict": False, "score": False}
    assert Fusing.capabilities()["fuse"] is True
    m = Plain()
    for call, what in ((m.fuse, "no fused representation"), (m.components, "no named components"),
                       (m.predict, "makes no predictions")):
        with pytest.raises(NotImplementedError, match=f"method 'plain_test' has {what}|method 'plain_test' {what}"):
            call({})
    with pytest.raises(NotImplementedError):
        m.embed({})
    assert m.oom_state() is None
    q = {"a": torch.tensor([[1.0, 0.0]]), "b": torch.tensor([[0.0, 2.0]])}
    cands = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    want = torch.tensor([[0.5, (0.5**0.5 + 0.5**0.5) / 2]])  # mean cosine over the two query modalities
    torch.testing.assert_close(m.score(q, cands), want)


def test_complete_rows_lengths_and_modalities_of():
    m = Plain()
    x = {"a": torch.arange(12.0).reshape(4, 3), "b": torch.zeros(4, 2)}
    batch = {"x": x, "mask": {"a": torch.tensor([True, True, False, True]), "b": torch.tensor([True] * 4)}}
    kept = m.complete_rows(batch)
    assert torch.equal(kept["x"]["a"], x["a"][[0, 1, 3]])
    assert m.complete_rows(batch, ["b"]) is batch  # every row holds b
    batch["mask"]["b"] = torch.tensor([True, False, False, False])
    with pytest.raises(MMIBError, match="method 'plain_test': fewer than 2 samples in the batch have every modality"):
        m.complete_rows(batch)
    assert Method.lengths_of({"lengths": {"a": torch.tensor([3])}}, "a").tolist() == [3]
    assert Method.lengths_of({"x": x}, "a") is None
    assert m.modalities_of({"x": x}) == ("a", "b") and m.modalities_of({"x": x}, ["b"]) == ("b",)


def test_build_encoders_checks_the_per_modality_settings():
    enc = Plain(encoder_cfg={"vector": {"type": "mlp", "hidden": [4]}}).build_encoders(5)
    assert set(enc) == {"a", "b"} and enc["b"](torch.zeros(2, 2)).shape == (2, 5)
    with pytest.raises(UnknownNameError, match="modality under encoder.modalities for data set 'toy'"):
        Plain(encoder_cfg={"modalities": {"c": {}}}).build_encoders(5)
    with pytest.raises(MMIBError, match="encoder.modalities: expected a mapping"):
        Plain(encoder_cfg={"modalities": ["a"]}).build_encoders(5)


def test_a_non_finite_loss_is_a_named_error():
    m = Plain()
    m.check_finite(LossOutput(torch.tensor(1.0)), "training")  # finite: nothing happens
    out = LossOutput(torch.tensor(float("nan")), {"ce": torch.tensor(2.0), "vec": torch.ones(3)})
    with pytest.raises(NonFiniteLossError, match=r"method 'plain_test': training loss is nan at epoch 0, step 0; "
                                                 r"terms: \{'ce': 2.0\}"):
        m.check_finite(out, "training")
    assert issubclass(NonFiniteLossError, FloatingPointError) and issubclass(NonFiniteLossError, MMIBError)


def test_checkpoint_keeps_the_running_training_term_sums():
    m = Plain()
    m._term_sums["train"] = {"ce": (torch.tensor(6.0), 3)}
    m._term_sums["val"] = {"ce": (torch.tensor(1.0), 1)}
    ckpt = {}
    m.on_save_checkpoint(ckpt)
    assert set(ckpt["mmib_term_sums"]) == {"train"}  # only a mid-epoch training epoch resumes
    other = Plain()
    other._term_sums["val"] = {"stale": (torch.tensor(9.0), 9)}
    other.on_load_checkpoint(ckpt)
    assert set(other._term_sums) == {"train"} and other._term_sums["train"]["ce"][1] == 3
    assert float(other._term_sums["train"]["ce"][0]) == 6.0
    other.on_load_checkpoint({})
    assert other._term_sums == {}
