"""Configuration: Hydra composition of ``src/mmib/conf`` with command-line style overrides, and the checks of a training
config before it runs.

``compose_config(["method=clip", "data.views=[0,2,5]", "trainer.max_epochs=5"])`` returns a resolved
:class:`omegaconf.DictConfig`. Unknown groups, options and keys raise :class:`~mmib.errors.UnknownNameError`
with the valid names listed.

The package: :mod:`~mmib.config.compose` (composition, overrides, the data config),
:mod:`~mmib.config.checks` (:func:`check_train_config`), :mod:`~mmib.config.resume` (run folder, resume). The public
names are gathered here.
"""

from mmib.config.checks import ENGINE_TRAINER_KEYS, MAX_SEED, check_train_config, valid_precisions
from mmib.config.compose import (
    CONF_DIR,
    DATAMODULE_KEYS,
    check_method_keys,
    compose_config,
    dotted_overrides,
    group_options,
    split_data_config,
    to_container,
)
from mmib.config.resume import (
    check_resume_compatible,
    check_resume_keeps_split,
    check_run_folder_writable,
    resume_checkpoint_path,
)

__all__ = [
    "CONF_DIR",
    "DATAMODULE_KEYS",
    "ENGINE_TRAINER_KEYS",
    "MAX_SEED",
    "check_method_keys",
    "check_resume_compatible",
    "check_resume_keeps_split",
    "check_run_folder_writable",
    "check_train_config",
    "compose_config",
    "dotted_overrides",
    "group_options",
    "resume_checkpoint_path",
    "split_data_config",
    "to_container",
    "valid_precisions",
]
