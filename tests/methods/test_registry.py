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
