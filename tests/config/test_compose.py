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


def test_every_listed_method_is_trainable_by_name():
    """`mmib methods` lists exactly the methods `mmib train method=<name>` accepts (omib_svdd included)."""
    from mmib.methods.registry import method_names

    assert set(method_names()) == set(group_options("method"))
    for name in method_names():
        assert compose_config([f"method={name}"]).method.name == name


def test_omib_svdd_trains_by_name(tmp_path, capsys):
    import torch

    from mmib.cli import main
    from mmib.methods.registry import load_method

    code = main(["train", "method=omib_svdd", "data=sim_align", "data.n_samples=200", "data.n_modalities=2",
                 "data.modality_dim=8", "trainer.max_epochs=2", "method.warmup_epochs=1", "method.beta=0.001",
                 "method.representation_dim=16", "method.svdd_dim=8", "method.head_hidden=[16]",
                 "method.vae_hidden=16", "method.can_heads=2", "trainer.enable_progress_bar=false",
                 f"run_dir={tmp_path}", "name=svdd"])
    assert code == 0, capsys.readouterr().err
    m = load_method(str(tmp_path / "svdd" / "checkpoints" / "last.ckpt"))
    assert m.name == "omib_svdd" and m.task == "svdd" and bool(m.centers_ready)
    assert m.cfg["svdd_dim"] == 8 and m.cfg["warmup_epochs"] == 1  # omib's options, set for the variant
    assert torch.isfinite(m.center_fused).all()


@pytest.mark.parametrize("overrides, message", [
    (["method=clpi"], "unknown method 'clpi'; did you mean 'clip'? valid: bigated, clip, clip_ib"),
    (["data=mfaet"], "unknown data 'mfaet'; did you mean 'mfeat'? valid: "),
    (["trainer.max_epoch=3"], "unknown config key 'trainer.max_epoch'; did you mean 'trainer.max_epochs'? valid: "),
    (["trainr.max_epochs=3"], "unknown config key 'trainr'; did you mean 'trainer'? valid: data, encoder, method"),
    (["method.optim.lrr=1"], "unknown config key 'method.optim.lrr'; did you mean 'method.optim.lr'? valid: "
                             "method.optim.lr, method.optim.name, "),
    (["+methd=clip"], "unknown config key 'methd'; did you mean 'method'? valid: "),
    (["+method.embed_dimm=3"], "method 'clip' has no option(s) ['embed_dimm']; did you mean 'embed_dim'? "),
    (["experiment=comm_mosy"], "unknown experiment 'comm_mosy'; did you mean 'comm_mosi'"),
    # nothing close: no suggestion, the full list as before
    (["method=zzzz"], "unknown method 'zzzz'; valid: bigated"),
    (["trainer.nope=1"], "unknown config key 'trainer.nope'; valid: trainer.accelerator"),
])
def test_typos_suggest_the_closest_names_first(overrides, message):
    from mmib.errors import MMIBError

    with pytest.raises(MMIBError) as e:
        compose_config(overrides)
    assert str(e.value).startswith(message), str(e.value)
    assert "\n" not in str(e.value)


def test_did_you_mean_everywhere_unknown_name_error_is_raised():
    from mmib.data.registry import build_dataset
    from mmib.data.spec import DatasetSpec, ModalitySpec
    from mmib.errors import close_matches

    spec = DatasetSpec("toy", (ModalitySpec("eeg", "vector", (3,)), ModalitySpec("fnirs", "vector", (2,))))
    with pytest.raises(UnknownNameError, match=r"^unknown modality of data set 'toy' 'fnris'; did you mean 'fnirs'\? "
                                               r"valid: eeg, fnirs$") as e:
        spec.modality("fnris")
    assert e.value.suggestions == ["fnirs"]
    with pytest.raises(UnknownNameError, match=r"unknown data set 'sim_algn'; did you mean 'sim_align'\? valid: "):
        build_dataset("sim_algn")
    with pytest.raises(UnknownNameError, match=r"unknown option of data set 'sim_align' 'n_sample'; "
                                               r"did you mean 'n_samples'"):
        build_dataset("sim_align", n_sample=10)
    with pytest.raises(UnknownNameError, match=r"unknown method 'omib_svd'; did you mean 'omib_svdd' or 'omib'\?"):
        get_method_class("omib_svd")
    # dotted keys compare their last part among siblings: the shared prefix alone suggests nothing
    assert close_matches("trainer.nope", ["trainer.devices", "trainer.precision"]) == []
    assert close_matches("Clip", ["clip", "cox"]) == ["clip"]  # case-insensitive
    assert close_matches("eeg, fnris", ["eeg", "fnirs"]) == ["eeg", "fnirs"]
