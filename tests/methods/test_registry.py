"""Every registered method carries its registry name (checkpoints store it), and a trained checkpoint of each
vector-data method reloads through ``load_method`` to the same representations (what ``mmib eval`` relies on)."""

import pytest
import torch

from mmib.config import compose_config
from mmib.engine import train
from mmib.methods.registry import get_method_class, load_method, method_names, register_method


def test_every_registered_class_carries_its_name():
    for n in method_names():
        assert get_method_class(n).name == n


def test_registering_under_another_name_is_an_error():
    cls = get_method_class("clip")
    with pytest.raises(ValueError, match="registered as 'other'"):
        register_method("other")(cls)


@pytest.mark.parametrize("name", ["comm", "cross", "cross_self", "supcon", "factorcl_sup", "factorcl_ssl"])
def test_checkpoint_reloads_to_the_same_representations(name, tmp_path):
    cfg = compose_config([f"method={name}", "data=rus_sim", "data.n_samples=200", "data.batch_size=32",
                          "trainer.max_epochs=1", "trainer.enable_progress_bar=false", f"run_dir={tmp_path}",
                          "name=r", "encoder.vector.hidden=[16]"])
    res = train(cfg)
    m = load_method(str(tmp_path / "r" / "checkpoints" / "last.ckpt"))
    assert type(m) is get_method_class(name)
    b = res.datamodule.dataset.get_batch(res.datamodule.indices["test"][:16])
    res.method.eval()
    with torch.no_grad():
        a, c = res.method.embed(b), m.embed(b)
    for k in a:
        torch.testing.assert_close(a[k], c[k])


def test_discovery_imports_every_module_of_the_package():
    """No hand-kept module list: every module under src/mmib/methods (sub-packages included) is imported by the first
    lookup, and every registered class comes from one of them."""
    from pathlib import Path

    import mmib.methods
    from mmib.methods.registry import METHODS, discover_methods

    root = Path(mmib.methods.__file__).parent
    on_disk = {"mmib.methods." + ".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
               for p in root.rglob("*.py") if p.name != "__init__.py" or p.parent != root}
    method_names()
    assert set(discover_methods()) == on_disk
    assert {cls.__module__ for cls in METHODS.values()} <= on_disk


def test_a_new_module_of_the_package_is_found_without_listing_it(tmp_path, monkeypatch):
    import sys

    import mmib.methods
    from mmib.methods import registry

    (tmp_path / "zz_probe_method.py").write_text(
        "from mmib.methods.base import Method\n"
        "from mmib.methods.registry import register_method\n\n\n"
        "@register_method('zz_probe')\n"
        "class ZzProbeMethod(Method):\n"
        "    pass\n")
    monkeypatch.setattr(mmib.methods, "__path__", [*mmib.methods.__path__, str(tmp_path)])
    monkeypatch.setattr(registry, "_DISCOVERED", None)
    try:
        assert "zz_probe" in method_names()
        assert get_method_class("zz_probe").__name__ == "ZzProbeMethod"
        assert "mmib.methods.zz_probe_method" in registry.discover_methods()
    finally:
        registry.METHODS.pop("zz_probe", None)
        sys.modules.pop("mmib.methods.zz_probe_method", None)
