"""Configuration: Hydra composition of ``src/mmib/conf`` with command-line style overrides.

``compose_config(["method=clip", "data.views=[0,2,5]", "trainer.max_epochs=5"])`` returns a resolved
:class:`omegaconf.DictConfig`. Unknown groups, options and keys raise :class:`~mmib.errors.UnknownNameError`
with the valid names listed. Also: a data config split into data set options and data module settings, and options
turned back into override strings.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from mmib.errors import MMIBError, UnknownNameError, did_you_mean

CONF_DIR = Path(__file__).parent.parent / "conf"
#: keys of the data config that configure the data module; every other key is an option of the data set
DATAMODULE_KEYS = ("batch_size", "val_fraction", "test_fraction", "split_by", "stratify", "standardize",
                   "drop_last", "num_workers", "train_label_noise")


def group_options(group: str) -> list[str]:
    d = CONF_DIR / group
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def compose_config(overrides: Sequence[str] = (), config_name: str = "config") -> DictConfig:
    """Compose the root config with overrides (Hydra syntax); refuses method settings the method lacks
    (:func:`check_method_keys`)."""
    overrides = list(overrides)
    cfg = _compose(overrides, config_name)
    _check_added_top_level_keys(cfg, overrides, config_name)
    exp = [o.split("=", 1)[1] for o in overrides if o.lstrip("+").startswith("experiment=")]
    check_method_keys(cfg, exp[-1] if exp else None, overrides)
    return cfg


def _check_added_top_level_keys(cfg: DictConfig, overrides: Sequence[str], config_name: str) -> None:
    """``+key=value`` with a top-level ``key`` that neither the root config nor a chosen group or recipe has: mmib
    reads no such key, so a typo (``+seeed=1``, ``+methd=clip``) would be ignored silently. An error instead."""
    added = [o.split("=", 1)[0][1:] for o in overrides if o.startswith("+") and not o.startswith("++")]
    added = [k for k in added if k and "." not in k and "/" not in k]
    if not added:
        return
    rest = [o for o in overrides if not (o.startswith("+") and o.split("=", 1)[0][1:] in added)]
    groups = {d.name for d in CONF_DIR.iterdir() if d.is_dir() and not d.name.startswith("_")}
    base = {str(k) for k in _compose(rest, config_name).keys()} | groups
    for k in added:
        if k not in base:
            raise UnknownNameError("config key", k, sorted(base))


def _compose(overrides: list[str], config_name: str) -> DictConfig:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException

    overrides = list(overrides)
    for o in overrides:
        if "=" not in o:
            raise MMIBError(f"override '{o}' is not of the form key=value (e.g. trainer.max_epochs=5)")
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
            try:
                cfg = compose(config_name=config_name, overrides=overrides)
            except MissingConfigException as e:
                raise _missing_option(str(e)) from None
            except ConfigCompositionException as e:
                raise _bad_override(str(e), overrides) from None
            except OverrideParseException as e:
                raise MMIBError(f"cannot parse override: {str(e).splitlines()[0]}") from None
    finally:
        GlobalHydra.instance().clear()
    return cfg


@functools.cache
def _method_option_names(name: str) -> frozenset[str]:
    """Top-level keys of the packaged method config ``name`` (its defaults list resolved)."""
    return frozenset(_compose([f"method={name}"], "config")["method"].keys())


def check_method_keys(cfg: DictConfig, experiment: str | None = None, overrides: Sequence[str] = ()) -> list[str]:
    """Settle ``method`` settings that the chosen method does not have; returns the keys dropped.

    A command-line ``method.<key>=...`` for a key the method lacks is already an error (Hydra's struct mode), and so
    is ``+method.<key>=...`` here. Keys that arrive by a merge instead — a paper recipe's settings for its own method,
    kept after ``method=<other>`` replaced it (``experiment=comm_mimic method=clip`` carries CoMM's ``vector_tokens``)
    — are dropped with a warning that names them, so that the other method runs on the recipe's data and shared
    settings without receiving options it would ignore. Only methods with a packaged config are checked.
    """
    m = cfg.get("method")
    if not isinstance(m, DictConfig) or not m.get("name"):
        return []
    if not (CONF_DIR / "method" / f"{m['name']}.yaml").is_file():
        return []
    base = _method_option_names(str(m["name"]))
    extra = sorted(k for k in m.keys() if k not in base)
    if not extra:
        return []
    given = {o.split("=", 1)[0].lstrip("+~") for o in overrides}
    explicit = [k for k in extra if any(g == f"method.{k}" or g.startswith(f"method.{k}.") for g in given)]
    if explicit:
        raise MMIBError(f"method '{m['name']}' has no option(s) {explicit}; "
                        f"{did_you_mean(explicit[0], sorted(base))}its options: {sorted(base)}")
    import warnings

    with open_dict(cfg):
        for k in extra:
            del cfg.method[k]
    src = f"experiment={experiment}" if experiment else "the composed config"
    warnings.warn(f"{src}: method '{m['name']}' has no option(s) {extra} (set for the recipe's own method); "
                  "dropped them", UserWarning, stacklevel=3)
    return extra


def _missing_option(msg: str) -> MMIBError:
    m = re.search(r"Could not find '([^/']+)/([^']+)'", msg)
    if m:
        group, opt = m.group(1), m.group(2)
        return UnknownNameError(f"{group}", opt, group_options(group))
    return MMIBError(msg.splitlines()[0])


def _bad_override(msg: str, overrides: Sequence[str]) -> MMIBError:
    m = re.search(r"Could not override '([^']+)'", msg) or re.search(r"Key '([^']+)' is not in struct", msg)
    if m:
        key = m.group(1)
        try:
            base = compose_config([o for o in overrides if not o.split("=")[0].lstrip("+~").startswith(key)])
        except MMIBError:
            return UnknownNameError("config key", key, [])
        # the deepest existing node on the key's path: `trainr.max_epochs` is an unknown key `trainr` at the top
        parts = key.split(".")
        node: Any = base
        known = 0
        while known < len(parts) - 1 and isinstance(node, DictConfig) and parts[known] in node:
            node = node[parts[known]]
            known += 1
        parent = ".".join(parts[:known])
        bad = ".".join(parts[: known + 1])
        valid = [f"{parent}.{k}" if parent else str(k) for k in node.keys()] if isinstance(node, DictConfig) else []
        return UnknownNameError("config key", bad, valid)
    return MMIBError(msg.splitlines()[0])


def to_container(cfg: Any) -> Any:
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg


def split_data_config(data_cfg: Mapping[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(data set name, data set options, data module settings) from a ``data`` config node."""
    d = dict(to_container(data_cfg))
    name = d.pop("name", None)
    if not name:
        raise MMIBError("data.name is missing: choose a data set, e.g. data=mfeat")
    dm = {k: d.pop(k) for k in DATAMODULE_KEYS if k in d}
    return name, d, dm


def _format_value(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_format_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ",".join(f"{k}:{_format_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, str) and re.search(r"[\s,:\[\]{}=]", v):
        return "'" + v.replace("'", "\\'") + "'"
    return str(v)


def dotted_overrides(options: Mapping[str, Any]) -> list[str]:
    """Turn ``{"trainer.max_epochs": 5, "data.views": [0, 2]}`` into Hydra override strings."""
    return [f"{k}={_format_value(v)}" for k, v in options.items()]
