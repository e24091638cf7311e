"""The alignment methods (methods/alignment.py): one module-level class per alignment objective, found by name."""

import pytest

from mmib import objectives
from mmib.data.synthetic.align import make_sim_align
from mmib.errors import MMIBError
from mmib.methods import alignment
from mmib.methods.registry import build_method, get_method_class

CLASS_NAMES = {"clip": "ClipMethod", "clip_ib": "ClipIbMethod", "symile": "SymileMethod", "gram": "GramMethod",
               "triangle": "TriangleMethod", "ova_ib": "OvaIbMethod"}


def test_every_alignment_objective_has_a_module_level_class_named_after_it():
    assert set(CLASS_NAMES) == set(objectives.ALIGNMENT_OBJECTIVES)
    for name, cls_name in CLASS_NAMES.items():
        cls = getattr(alignment, cls_name)
        assert get_method_class(name) is cls and cls.name == name
        assert cls.__module__ == alignment.__name__ and cls.__qualname__ == cls_name
        assert issubclass(cls, alignment.AlignmentMethod) and cls.__doc__


def test_each_class_trains_its_own_objective():
    spec = make_sim_align(n_samples=8, n_modalities=3, modality_dim=4).spec
    cfg = {"representation_dim": 8, "embed_dim": 8, "head_layers": 1}
    for name in CLASS_NAMES:
        m = build_method(name, spec, cfg)
        assert type(m.objective) is objectives.ALIGNMENT_OBJECTIVES[name]


def test_triangle_declares_three_modalities():
    assert alignment.TriangleMethod.exact_modalities == 3
    assert all(getattr(alignment, c).exact_modalities is None for n, c in CLASS_NAMES.items() if n != "triangle")
    spec4 = make_sim_align(n_samples=8, n_modalities=4, modality_dim=4).spec
    with pytest.raises(MMIBError, match="exactly 3 modalities"):
        build_method("triangle", spec4, {"representation_dim": 8, "embed_dim": 8, "head_layers": 1})
    build_method("gram", spec4, {"representation_dim": 8, "embed_dim": 8, "head_layers": 1})


def test_head_centre_default_symile_only_and_the_loss_centres_the_complete_rows():
    import torch

    from mmib.nn.heads import BatchCentre

    spec = make_sim_align(n_samples=8, n_modalities=3, modality_dim=4).spec
    cfg = {"representation_dim": 8, "embed_dim": 8, "head_layers": 1}
    for name in CLASS_NAMES:
        if name == "triangle":
            continue
        m = build_method(name, spec, cfg)
        if name == "symile":  # the default (docs/methods/symile.md, "Centred embeddings")
            assert m.opts.head_centre == "batch_offset" and all(isinstance(c, BatchCentre) for c in m.centres.values())
        else:  # no module, the state dict of before the option existed
            assert m.opts.head_centre == "none" and m.centres is None
            assert not any(k.startswith("centres.") for k in m.state_dict())
    with pytest.raises(MMIBError, match="head_centre"):
        build_method("clip", spec, {**cfg, "head_centre": "layer"})
    torch.manual_seed(0)
    m = build_method("symile", spec, {**cfg, "head_centre": "batch"})
    assert all(c.offset is None for c in m.centres.values())
    mods = spec.modality_names
    x = {k: torch.randn(6, 4) for k in mods}
    present = {k: torch.ones(6, dtype=torch.bool) for k in mods}
    present[mods[1]][[2, 5]] = False  # rows 2 and 5 lack a modality: dropped before the batch mean is taken
    batch = {"x": x, "mask": present, "y": torch.zeros(6, dtype=torch.long)}
    seen = {}
    m.objective.forward = lambda z: seen.update(z) or alignment.LossOutput(loss=torch.zeros(()))
    m.train()
    m.loss(batch)
    keep = torch.tensor([True, True, False, True, True, False])
    for k in mods:
        h = m.heads[k](m.encoders[k](x[k], None))[keep]
        torch.testing.assert_close(seen[k], h - h.mean(0))


def test_a_symile_checkpoint_of_before_head_centre_loads_as_its_old_model():
    import torch

    spec = make_sim_align(n_samples=8, n_modalities=3, modality_dim=4).spec
    cfg = {"representation_dim": 8, "embed_dim": 8, "head_layers": 1}
    torch.manual_seed(0)
    old = build_method("symile", spec, {**cfg, "head_centre": "none"}).eval()
    new = build_method("symile", spec, cfg)
    new.load_state_dict(old.state_dict())  # no centres.* entries: strict loading still passes
    new.eval()
    batch = {"x": {k: torch.randn(5, 4) for k in spec.modality_names}}
    a, b = old.embed(batch, space="embedding"), new.embed(batch, space="embedding")
    for k in a:
        torch.testing.assert_close(a[k], b[k])


def test_a_fresh_head_puts_every_row_on_one_direction_and_centring_removes_it():
    # the premise of head_centre (docs/methods/symile.md, "Centred embeddings"): the outputs of a fresh ReLU MLP head
    # share one direction, so the M-way product of the rows' deviations (the only signal of an XOR) starts small
    import torch

    from mmib.data.synthetic.xor_align import make_xor_align

    ds = make_xor_align(n_samples=256, n_modalities=4, n_symbols=2)
    batch = ds.get_batch(torch.arange(128))
    cfg = {"representation_dim": 64, "embed_dim": 64}
    for centre, low, high in (("none", 0.9, 1.0), ("batch_offset", -0.05, 0.05)):
        torch.manual_seed(0)
        m = build_method("symile", ds.spec, {**cfg, "head_centre": centre}).train()
        with torch.no_grad():
            z = m.embed(batch, space="embedding")
        for v in z.values():
            u = torch.nn.functional.normalize(v, dim=1)
            cos = (u @ u.T)[~torch.eye(len(u), dtype=torch.bool)].mean().item()
            assert low < cos < high, (centre, cos)
