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
