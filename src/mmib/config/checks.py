"""Checks of a training config before anything is built or written: sizes, trainer keys, seed, epochs and intervals,
precision, accelerator and devices, the method's learning rates and temperatures; then the run folder and resume
(:mod:`mmib.config.resume`)."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from typing import Any

from mmib.config.compose import CONF_DIR, to_container
from mmib.config.resume import _check_resume, _run_folder, check_run_folder_writable
from mmib.errors import MMIBError, UnknownNameError

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
