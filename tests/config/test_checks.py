"""mmib.config.checks: check_train_config refuses, with one line naming the key, a training config that Lightning
would reject with a traceback or run silently wrong; good configs pass and nothing is written."""

import pytest
import torch

from mmib.config.checks import ENGINE_TRAINER_KEYS, MAX_SEED, check_train_config, valid_precisions
from mmib.errors import MMIBError, UnknownNameError


def _cfg(tmp_path, **changes):
    c = {"seed": 0, "name": "x", "run_dir": str(tmp_path / "runs"),
         "trainer": {"max_epochs": 2, "accelerator": "cpu", "devices": 1, "precision": "32-true",
                     "checkpoint_every_n_steps": None, "gradient_clip_val": None},
         "method": {"name": "clip", "representation_dim": 16, "objective": {"temperature": 0.07},
                    "optim": {"name": "adamw", "lr": 1e-3, "weight_decay": 0.0}},
         "data": {"name": "mfeat", "batch_size": 32, "num_workers": 0}}
    for key, value in changes.items():
        *path, leaf = key.split("__")
        node = c
        for p in path:
            node = node[p]
        if value is _DEL:
            node.pop(leaf)
        else:
            node[leaf] = value
    return c


_DEL = object()


def test_a_good_config_passes_and_writes_nothing(tmp_path):
    check_train_config(_cfg(tmp_path))
    check_train_config(_cfg(tmp_path, seed=MAX_SEED, trainer__max_epochs=-1, trainer__max_steps=5,
                            trainer__devices="auto", trainer__limit_val_batches=0.0,
                            method__min_temperature=0.0, method__learn_temperature=True,
                            method__objective__temperature=None))  # null: the method's default
    for k in ENGINE_TRAINER_KEYS:  # read by the engine, not Lightning arguments: accepted
        check_train_config(_cfg(tmp_path, **{f"trainer__{k}": 3}))
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("changes, message", [
    ({"seed": -1}, f"seed must be an integer in [0, {MAX_SEED}], got -1"),
    ({"seed": MAX_SEED + 1}, f"seed must be an integer in [0, {MAX_SEED}], got {MAX_SEED + 1}"),
    ({"seed": True}, "seed must be an integer"),
    ({"trainer__max_epochs": 0}, "trainer.max_epochs must be >= 1, got 0"),
    ({"trainer__max_epochs": None}, "trainer.max_epochs must be >= 1, got null (Lightning's 'no epoch limit' needs "
                                    "trainer.max_steps >= 1)"),
    ({"trainer__max_steps": 0}, "trainer.max_steps must be an integer >= 1 (or -1: no step limit), got 0"),
    ({"trainer__log_every_n_steps": 0}, "trainer.log_every_n_steps must be an integer >= 1, got 0"),
    ({"trainer__checkpoint_every_n_steps": 0}, "trainer.checkpoint_every_n_steps must be an integer >= 1 or null"),
    ({"trainer__limit_train_batches": 0.0}, "trainer.limit_train_batches must be a number of batches"),
    ({"trainer__limit_val_batches": 1.5}, "trainer.limit_val_batches must be a number of batches"),
    ({"trainer__gradient_clip_val": -1.0}, "trainer.gradient_clip_val must be a finite number >= 0 or null"),
    ({"trainer__precision": "8-true"}, "trainer.precision: invalid value '8-true'; valid: "),
    ({"trainer__devices": 0}, "trainer.devices must be a number of devices >= 1, -1 (all), 'auto'"),
    ({"trainer__devices": [0, 0]}, "trainer.devices must be a number of devices"),
    ({"trainer__num_nodes": 0}, "trainer.num_nodes must be an integer >= 1, got 0"),
    ({"trainer__num_nodes": 2}, "trainer.num_nodes=2: several machines need a cluster launch"),
    ({"trainer__callbacks": []}, "trainer.callbacks is set by mmib itself"),
    ({"method__optim__lr": 0.0}, "method.optim.lr must be a finite learning rate > 0, got 0.0"),
    ({"method__head_lr": float("inf")}, "method.head_lr must be a finite learning rate > 0, got inf"),
    ({"method__objective__temperature": -0.1}, "method.objective.temperature must be a finite temperature > 0"),
    ({"method__temperature_init": "hot"}, "method.temperature_init must be a finite temperature > 0, got 'hot'"),
    ({"method__representation_dim": 0}, "method.representation_dim must be an integer >= 1, got 0"),
    ({"method__n_layers": -1}, "method.n_layers must be an integer >= 0, got -1"),
    ({"method__optim__weight_decay": -0.1}, "method.optim.weight_decay must be a finite number >= 0"),
    ({"method__optim": 3}, "method.optim must be a mapping"),
    ({"data__batch_size": 0}, "data.batch_size must be an integer >= 1, got 0"),
    ({"data__batch_size": 2.0}, "data.batch_size must be an integer >= 1, got 2.0"),
    ({"data__num_workers": -1}, "data.num_workers must be an integer >= 0, got -1"),
])
def test_bad_settings_are_one_line_naming_the_key(tmp_path, monkeypatch, changes, message):
    for var in ("SLURM_JOB_ID", "MASTER_ADDR", "NODE_RANK", "GROUP_RANK"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(MMIBError) as e:
        check_train_config(_cfg(tmp_path, **changes))
    assert str(e.value).startswith(message), str(e.value)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "runs").exists()


def test_several_nodes_pass_under_a_cluster_launch(tmp_path, monkeypatch):
    monkeypatch.setenv("MASTER_ADDR", "10.0.0.1")
    check_train_config(_cfg(tmp_path, trainer__num_nodes=2))


def test_unknown_trainer_keys_and_accelerators_list_the_valid_names(tmp_path):
    with pytest.raises(UnknownNameError, match=r"unknown config key 'trainer.max_epoch'; did you mean "
                                               r"'trainer.max_epochs'( or '[a-z_.]+')*\? valid: trainer.accelerator, "):
        check_train_config(_cfg(tmp_path, trainer__max_epoch=3))
    with pytest.raises(UnknownNameError, match=r"unknown trainer.accelerator 'cpuu'; did you mean 'cpu'\? valid: "
                                               r"auto, .*cpu.*gpu"):
        check_train_config(_cfg(tmp_path, trainer__accelerator="cpuu"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_without_a_device_is_an_error_not_a_fallback(tmp_path):
    with pytest.raises(MMIBError, match="trainer.accelerator=cuda: no cuda device is available on this machine"):
        check_train_config(_cfg(tmp_path, trainer__accelerator="cuda"))


def test_valid_precisions_are_lightnings_with_the_explicit_forms_first():
    v = valid_precisions()
    assert {"32-true", "16-mixed", "bf16-mixed", "64-true", "32", "16"} <= set(v)
    assert len(v) == len(set(v))
    assert v.index("32-true") < v.index("32") and v.index("16-mixed") < v.index("16")
    dashed = ["-" in p for p in v]
    assert dashed == sorted(dashed, reverse=True)  # every "<bits>-<kind>" form before every short form
