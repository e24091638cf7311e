"""The run folder and resuming: is the run folder writable, which checkpoint ``resume=`` names, and does that checkpoint
continue the same run (same method, data set, seed and data settings)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from mmib.config.compose import to_container
from mmib.errors import MMIBError


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
