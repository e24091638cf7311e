"""Every packaged config composes, and names something that exists with options it accepts."""

import pytest

from mmib.config import compose_config, dotted_overrides, group_options, split_data_config
from mmib.data.registry import get_dataset_entry
from mmib.errors import UnknownNameError
from mmib.methods.registry import get_method_class


@pytest.mark.parametrize("name", [n for n in group_options("data") if n != "arrays"])
def test_data_configs_name_registered_sets_with_valid_options(name):
    cfg = compose_config([f"data={name}"])
    ds_name, options, dm = split_data_config(cfg.data)
    assert ds_name == name
    entry = get_dataset_entry(ds_name)
    unknown = set(options) - set(entry.options)
    assert not unknown, f"conf/data/{name}.yaml has options the loader does not take: {unknown}"
    assert dm["batch_size"] >= 1


@pytest.mark.parametrize("name", group_options("method"))
def test_method_configs_name_registered_methods(name):
    cfg = compose_config([f"method={name}"])
    assert get_method_class(cfg.method.name) is not None


def test_overrides_round_trip():
    ov = dotted_overrides({"data.views": [0, 2], "trainer.max_epochs": 3, "name": "a b", "resume": None,
                           "trainer.enable_progress_bar": False})
    cfg = compose_config(ov)
    assert list(cfg.data.views) == [0, 2] and cfg.trainer.max_epochs == 3 and cfg.name == "a b"
    assert cfg.resume is None and cfg.trainer.enable_progress_bar is False


def test_unknown_group_option_lists_valid():
    with pytest.raises(UnknownNameError, match=r"unknown encoder 'big'; valid: default"):
        compose_config(["encoder=big"])


def test_a_recipe_s_method_settings_do_not_leak_into_another_method():
    from mmib.config import compose_config
    from mmib.errors import MMIBError

    cfg = compose_config(["experiment=comm_mimic"])  # the recipe's own method: every key is a CoMM option
    assert cfg.method.name == "comm" and cfg.method.vector_tokens == 10
    with pytest.warns(UserWarning, match=r"experiment=comm_mimic: method 'clip' has no option\(s\) \['vector_tokens'\]"):
        cfg = compose_config(["experiment=comm_mimic", "method=clip"])
    assert "vector_tokens" not in cfg.method
    assert cfg.method.optim.name == "adamw" and cfg.data.batch_size == 64  # the shared settings stay
    with pytest.raises(MMIBError, match=r"method 'clip' has no option\(s\) \['nope'\]"):
        compose_config(["method=clip", "+method.nope=1"])
