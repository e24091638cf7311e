"""Configuration: Hydra composition of ``src/mmib/conf`` with command-line style overrides.

``compose_config(["method=clip", "data.views=[0,2,5]", "trainer.max_epochs=5"])`` returns a resolved
:class:`omegaconf.DictConfig`. Unknown groups, options and keys raise :class:`~mmib.errors.UnknownNameError`
with the valid names listed.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from mmib.errors import MMIBError, UnknownNameError, did_you_mean

CONF_DIR = Path(__file__).parent / "conf"
#: keys of the data config that configure the data module; every other key is an option of the data set
DATAMODULE_KEYS = ("batch_size", "val_fraction", "test_fraction", "split_by", "stratify", "standardize",
                   "drop_last", "num_workers")


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


# ---------------------------------------------------------------------------------------------- checks before training
#: trainer keys the engine reads itself (not Lightning ``Trainer`` arguments)
ENGINE_TRAINER_KEYS = ("checkpoint_every_n_epochs", "checkpoint_every_n_steps")
#: ``Trainer`` arguments the engine sets itself; a config cannot give them
_ENGINE_SET_TRAINER_ARGS = ("default_root_dir", "callbacks", "logger", "enable_model_summary", "use_distributed_sampler",
                            "plugins", "enable_checkpointing")
#: the largest seed numpy and Lightning accept (Lightning silently replaces a larger one by a random seed)
MAX_SEED = 2**32 - 1


def check_train_config(c: Mapping[str, Any]) -> None:
    """Refuse, with one line naming the key and what was expected, a training config that would fail inside
    Lightning with a traceback or run silently wrong. Called by :func:`mmib.engine.train` before it builds anything
    or writes to the run folder.

    Checked: trainer keys Lightning does not know; ``seed`` (an integer in [0, 2**32-1]); ``trainer.max_epochs``
    (>= 1; Lightning's ``-1``/``null`` = "no epoch limit" only with ``trainer.max_steps >= 1``);
    ``trainer.max_steps``; the epoch / step intervals (>= 1); ``trainer.precision`` (one of Lightning's);
    ``trainer.accelerator`` (known, and such a device present: ``gpu``/``cuda``/``mps`` without one is an error, not
    a fallback); ``trainer.devices`` (a positive count, -1, ``auto`` or device indices, no more than there are);
    every learning rate (``lr``, ``*_lr``) and temperature (``temperature``, ``*_temperature``, ``temperature_*``)
    under ``method`` (finite and > 0; floors such as ``min_temperature`` are not checked here); that the run folder
    can be written; and, with ``resume=``, that the checkpoint exists and was trained with the same method on the
    same data set (:func:`check_resume_compatible`).
    """
    c = to_container(c)
    t = dict(c.get("trainer") or {})
    _check_trainer_keys(t)
    _check_seed(c.get("seed"))
    _check_epochs_and_intervals(t)
    _check_precision(t.get("precision", "32-true"))
    _check_accelerator_and_devices(t.get("accelerator", "auto"), t.get("devices", "auto"))
    _check_method_numbers(c.get("method") or {}, "method")
    _check_sizes(c)
    run = _run_folder(c)
    check_run_folder_writable(run)
    _check_resume(c, run)


def _check_sizes(c: Mapping[str, Any]) -> None:
    """Counts and sizes that Lightning, the data loader or an encoder would reject with a traceback (or accept and
    run silently wrong): ``data.batch_size`` (an integer >= 1), ``data.num_workers`` (>= 0), ``trainer.num_nodes``
    (1 unless launched on a cluster), and under ``method`` every ``*_dim`` / ``*_layers`` (integers, dims >= 1,
    layers >= 0) and ``weight_decay`` (a finite number >= 0)."""
    import math
    import os

    d, t, m = dict(c.get("data") or {}), dict(c.get("trainer") or {}), c.get("method") or {}
    if "batch_size" in d and not (_int(d["batch_size"]) and d["batch_size"] >= 1):
        raise MMIBError(f"data.batch_size must be an integer >= 1, got {d['batch_size']!r}")
    if "num_workers" in d and not (_int(d["num_workers"]) and d["num_workers"] >= 0):
        raise MMIBError(f"data.num_workers must be an integer >= 0, got {d['num_workers']!r}")
    nodes = t.get("num_nodes", 1)
    if not (_int(nodes) and nodes >= 1):
        raise MMIBError(f"trainer.num_nodes must be an integer >= 1, got {nodes!r}")
    if nodes > 1 and not any(k in os.environ for k in ("SLURM_JOB_ID", "MASTER_ADDR", "NODE_RANK", "GROUP_RANK")):
        raise MMIBError(f"trainer.num_nodes={nodes}: several machines need a cluster launch (srun / torchrun with "
                        "MASTER_ADDR and NODE_RANK); on one machine use trainer.num_nodes=1")

    def walk(node: Any, path: str) -> None:
        if not isinstance(node, Mapping):
            if path == "method.optim" and node is not None:
                raise MMIBError(f"method.optim must be a mapping (name, lr, weight_decay, ...), got {node!r}")
            return
        for k, v in node.items():
            key = f"{path}.{k}"
            if isinstance(v, Mapping):
                walk(v, key)
            elif str(k).endswith("_dim") and v is not None and not (_int(v) and v >= 1):
                raise MMIBError(f"{key} must be an integer >= 1, got {v!r}")
            elif str(k).endswith("_layers") and v is not None and not isinstance(v, (list, tuple)) \
                    and not (_int(v) and v >= 0):
                raise MMIBError(f"{key} must be an integer >= 0, got {v!r}")
            elif str(k) == "weight_decay" and not (_number(v) and math.isfinite(v) and v >= 0):
                raise MMIBError(f"{key} must be a finite number >= 0, got {v!r}")

    walk(m, "method")
    if "optim" in m:
        walk(m["optim"], "method.optim")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_trainer_keys(t: Mapping[str, Any]) -> None:
    import inspect

    import lightning as L
    import yaml

    params = set(inspect.signature(L.Trainer.__init__).parameters) - {"self", *_ENGINE_SET_TRAINER_ARGS}
    packaged = set(yaml.safe_load((CONF_DIR / "trainer" / "default.yaml").read_text()) or {})
    valid = params | packaged | set(ENGINE_TRAINER_KEYS)
    for k in t:
        if k in _ENGINE_SET_TRAINER_ARGS:
            raise MMIBError(f"trainer.{k} is set by mmib itself (run folder, loggers, checkpoints); remove it")
        if k not in valid:
            raise UnknownNameError("config key", f"trainer.{k}", [f"trainer.{v}" for v in sorted(valid)])


def _check_seed(seed: Any) -> None:
    if not _int(seed) or not 0 <= seed <= MAX_SEED:
        raise MMIBError(f"seed must be an integer in [0, {MAX_SEED}], got {seed!r}")


def _check_epochs_and_intervals(t: Mapping[str, Any]) -> None:
    steps = t.get("max_steps", -1)
    if steps is not None and steps != -1 and (not _int(steps) or steps < 1):
        raise MMIBError(f"trainer.max_steps must be an integer >= 1 (or -1: no step limit), got {steps!r}")
    by_steps = _int(steps) and steps >= 1
    ep = t.get("max_epochs")
    if ep is None or ep == -1:
        if not by_steps:  # Lightning: null -> 1000 epochs, -1 -> endless
            raise MMIBError(f"trainer.max_epochs must be >= 1, got {'null' if ep is None else ep} (Lightning's "
                            "'no epoch limit' needs trainer.max_steps >= 1)")
    elif not _int(ep) or ep < 1:
        raise MMIBError(f"trainer.max_epochs must be >= 1, got {ep!r}")
    for k in ("check_val_every_n_epoch", "log_every_n_steps", "checkpoint_every_n_epochs"):
        v = t.get(k, 1)
        if v is not None and (not _int(v) or v < 1):
            raise MMIBError(f"trainer.{k} must be an integer >= 1, got {v!r}")
    v = t.get("checkpoint_every_n_steps")
    if v is not None and (not _int(v) or v < 1):
        raise MMIBError(f"trainer.checkpoint_every_n_steps must be an integer >= 1 or null (off), got {v!r}")
    for k in ("limit_train_batches", "limit_val_batches"):
        v = t.get(k)
        if v is None:
            continue
        ok = (_int(v) and v >= (1 if k == "limit_train_batches" else 0)) or \
            (isinstance(v, float) and (0.0 < v <= 1.0 or (v == 0.0 and k == "limit_val_batches")))
        if not ok:
            raise MMIBError(f"trainer.{k} must be a number of batches (an integer >= 1) or a fraction in (0, 1], "
                            f"or null (all), got {v!r}")
    g = t.get("gradient_clip_val")
    if g is not None and (not _number(g) or not math.isfinite(g) or g < 0):
        raise MMIBError(f"trainer.gradient_clip_val must be a finite number >= 0 or null (off), got {g!r}")


def valid_precisions() -> list[str]:
    """The ``trainer.precision`` values Lightning accepts."""
    import typing

    try:
        from lightning.fabric.connector import _PRECISION_INPUT
    except ImportError:  # pragma: no cover - an older Lightning
        return ["32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true", "32", "16", "bf16", "64"]

    out: list[str] = []

    def walk(tp: Any) -> None:
        for a in typing.get_args(tp):
            if typing.get_args(a):
                walk(a)
            elif str(a) not in out:
                out.append(str(a))

    walk(_PRECISION_INPUT)
    return sorted(out, key=lambda v: ("-" not in v, v.startswith("transformer")))  # "32-true" ... before "32"


def _check_precision(p: Any) -> None:
    valid = valid_precisions()
    if isinstance(p, bool) or str(p) not in valid:
        raise MMIBError(f"trainer.precision: invalid value {p!r}; valid: {', '.join(valid)}")
    if str(p).startswith("transformer-engine"):
        import importlib.util

        if importlib.util.find_spec("transformer_engine") is None:
            raise MMIBError(f"trainer.precision={p} needs NVIDIA's transformer_engine package, which is not "
                            "installed; use 32-true, 16-mixed or bf16-mixed")


def _device_count(accelerator: str) -> tuple[bool, int]:
    """(available, number of devices) of a Lightning accelerator name (``gpu``: CUDA, else MPS)."""
    from lightning.pytorch.accelerators import AcceleratorRegistry

    if accelerator == "gpu":
        cuda, mps = _device_count("cuda"), _device_count("mps")
        return cuda if cuda[0] else mps
    cls = AcceleratorRegistry[accelerator]["accelerator"]
    try:
        ok = bool(cls.is_available())
        return ok, int(cls.auto_device_count()) if ok else 0
    except Exception:  # a backend that cannot even be probed here (e.g. TPU without torch_xla)
        return False, 0


def _check_accelerator_and_devices(acc: Any, devices: Any) -> None:
    from lightning.pytorch.accelerators import AcceleratorRegistry

    names = sorted({"auto", "gpu", *AcceleratorRegistry.available_accelerators()})
    if not isinstance(acc, str) or acc not in names:
        raise UnknownNameError("trainer.accelerator", str(acc), names)
    ok_devices = (
        (_int(devices) and (devices >= 1 or devices == -1))
        or devices == "auto"
        or (isinstance(devices, list) and devices and all(_int(d) and d >= 0 for d in devices)
            and len(set(devices)) == len(devices))
        or (isinstance(devices, str) and re.fullmatch(r"\s*(-1|\d+(\s*,\s*\d+)*\s*,?)\s*", devices) is not None
            and devices.strip() not in ("0", "0,"))
    )
    if not ok_devices:
        raise MMIBError(f"trainer.devices must be a number of devices >= 1, -1 (all), 'auto' or a list of device "
                        f"indices such as [0,1]; got {devices!r}")
    if acc in ("auto", "cpu"):
        return
    available, count = _device_count(acc)
    if not available:
        raise MMIBError(f"trainer.accelerator={acc}: no {acc} device is available on this machine; use "
                        "trainer.accelerator=cpu (or auto: a GPU where there is one)")
    if isinstance(devices, str) and devices not in ("auto", "-1"):
        devices = [int(d) for d in devices.replace(" ", "").strip(",").split(",")] if "," in devices else int(devices)
    wanted = max(devices) + 1 if isinstance(devices, list) else devices if _int(devices) and devices > 0 else 0
    if wanted > count:
        raise MMIBError(f"trainer.devices={devices}: this machine has {count} {acc} device(s)")


_LR = re.compile(r"^(lr|.+_lr)$")
_TEMPERATURE = re.compile(r"^((.+_)?temperature(_.+)?)$")
#: temperature-like keys that are not a temperature to check here (switches, floors and caps)
_NOT_A_TEMPERATURE = re.compile(r"^(learn_|min_|max_).*|.*_(floor|min|max)$")


def _check_method_numbers(node: Any, path: str) -> None:
    """Every learning rate and temperature under ``method`` is finite and > 0 (``null`` = the method's default)."""
    if isinstance(node, Mapping):
        for k, v in node.items():
            key = f"{path}.{k}"
            k = str(k)
            if isinstance(v, Mapping):
                _check_method_numbers(v, key)
                continue
            what = "learning rate" if _LR.match(k) else \
                "temperature" if _TEMPERATURE.match(k) and not _NOT_A_TEMPERATURE.match(k) else None
            if what is None or v is None:
                continue
            if not _number(v) or not math.isfinite(v) or v <= 0:
                raise MMIBError(f"{key} must be a finite {what} > 0, got {v!r}")


def _run_folder(c: Mapping[str, Any]) -> Path:
    name = c.get("name") or f"{(c.get('method') or {}).get('name')}-{(c.get('data') or {}).get('name')}-s{c.get('seed')}"
    return Path(c.get("run_dir") or "runs") / str(name)


def check_run_folder_writable(run: str | os.PathLike) -> None:
    """One line if the run folder (or, when it does not exist yet, the folder it would be made in) cannot be
    written, before anything is written: not a folder, or not writable by this user."""
    run = Path(run)
    p = run
    while not p.exists() and p != p.parent:
        p = p.parent
    if p.exists() and not p.is_dir():
        raise MMIBError(f"run folder '{run}' cannot be created: '{p}' is a file, not a folder (check run_dir and name)")
    if not os.access(p, os.W_OK | os.X_OK):
        where = "" if p == run else f" (its folder '{p}' is read-only)"
        raise MMIBError(f"run folder '{run}' is not writable{where}; choose another run_dir= or name=")
    if p == run:
        for sub in ("checkpoints", "logs"):
            q = run / sub
            if q.exists() and (not q.is_dir() or not os.access(q, os.W_OK | os.X_OK)):
                raise MMIBError(f"run folder '{run}' is not writable: '{q}' is read-only or not a folder")


def resume_checkpoint_path(resume: str, run: Path) -> Path:
    """The checkpoint ``resume=`` names: ``last`` (this run's ``checkpoints/last.ckpt``), a run folder, or a file."""
    if resume == "last":
        p = run / "checkpoints" / "last.ckpt"
    else:
        p = Path(resume)
        if p.is_dir():
            p = p / "checkpoints" / "last.ckpt"
    if not p.is_file():
        raise MMIBError(f"resume: no checkpoint at '{p}' (give a .ckpt file, a run folder, or 'last')")
    return p


def _check_resume(c: Mapping[str, Any], run: Path) -> None:
    resume = c.get("resume")
    if not resume:
        return
    from mmib.methods.registry import read_checkpoint

    p = resume_checkpoint_path(str(resume), run)
    check_resume_compatible(c, read_checkpoint(p, mmap=True), p)
    check_resume_keeps_split(c, p)


#: data settings that do not change which rows are in which split, nor the order of batches
_SPLIT_NEUTRAL_DATA_KEYS = frozenset({"num_workers", "pin_memory", "persistent_workers", "prefetch_factor", "cache_dir",
                                      "trust_pickle"})


def check_resume_keeps_split(c: dict[str, Any], checkpoint: Path) -> None:
    """Resuming continues the same run: the seed and the data settings (which fix the splits, the normalization and
    the order of batches) must be those the checkpoint was trained with — else test rows could land in training and
    `mmib eval` would score on leaked rows. Compared with the ``config.yaml`` of the checkpoint's run folder."""
    stored = checkpoint.parent.parent / "config.yaml"
    if not stored.is_file():
        return  # a checkpoint outside a run folder: its method and data set are checked by check_train_config
    old = to_container(OmegaConf.load(stored))
    diffs = []
    if str(old.get("seed")) != str(c.get("seed")):
        diffs.append(f"seed {old.get('seed')} -> {c.get('seed')}")
    od, nd = dict(old.get("data") or {}), dict(c.get("data") or {})
    for k in sorted(set(od) & set(nd)):  # a key on one side only: the defaults changed since, not the user
        if k not in _SPLIT_NEUTRAL_DATA_KEYS and od[k] != nd[k]:
            diffs.append(f"data.{k} {od.get(k)!r} -> {nd.get(k)!r}")
    if diffs:
        raise MMIBError(f"resume: '{checkpoint}' was trained with other data settings ({'; '.join(diffs[:4])}); a "
                        "resumed run keeps its seed and data settings (they fix the splits): resume with the run's "
                        "own, or start a new run (name= or overwrite=true)")


def check_resume_compatible(c: Mapping[str, Any], ckpt: Mapping[str, Any], path: str | os.PathLike) -> None:
    """One line naming both sides when the checkpoint ``path`` (its loaded dictionary ``ckpt``) was trained with
    another method or on another data set than the config ``c`` (Lightning would fail with a traceback on the
    mismatched weights, or silently continue a different experiment).

    The checkpoint's method is ``hyper_parameters.method_name``. Its data set is ``data.name`` of the run's
    ``config.yaml`` next to ``checkpoints/`` when there is one, else the name in its ``hyper_parameters.spec`` —
    compared only when that is a registered data set name (the ``generic`` loader names a data set after its file).
    """
    c = to_container(c)
    hp = ckpt.get("hyper_parameters") or {}
    if not isinstance(hp, Mapping) or "method_name" not in hp:
        raise MMIBError(f"resume: '{path}' is not an mmib checkpoint (no hyper_parameters.method_name); expected "
                        "one written by `mmib train`")
    method = str((c.get("method") or {}).get("name"))
    data = str((c.get("data") or {}).get("name"))
    ck_method = str(hp["method_name"])
    ck_data: str | None = None
    run_cfg = Path(path).parent.parent / "config.yaml"
    if Path(path).parent.name == "checkpoints" and run_cfg.is_file():
        try:
            ck_data = str(OmegaConf.select(OmegaConf.load(run_cfg), "data.name"))
        except Exception:  # an unreadable config.yaml: fall back to the spec
            ck_data = None
    if ck_data is None or ck_data == "None":
        spec_name = (hp.get("spec") or {}).get("name") if isinstance(hp.get("spec"), Mapping) else None
        from mmib.data.registry import dataset_names

        ck_data = str(spec_name) if spec_name and str(spec_name) in dataset_names() else None
    if ck_method != method or (ck_data is not None and ck_data != data):
        theirs = f"method '{ck_method}'" + (f" on data set '{ck_data}'" if ck_data else "")
        raise MMIBError(f"resume: checkpoint '{path}' was trained with {theirs}, this config trains method "
                        f"'{method}' on data set '{data}'; resume with the same method= and data=, or start a new "
                        "run (another name=, no resume=)")
