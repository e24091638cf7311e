"""Vision & Touch (Lee et al., ICRA 2019; MultiBench ``datasets/robotics``): a folder of ``*.h5`` episodes.

Each episode file holds T (50 in the released data) steps of: ``image`` (T, 128, 128, 3) or (T, 3, 128, 128) RGB,
``depth_data`` (T, 128, 128[, 1]), ``proprio`` (T, >= 8), ``ee_forces_continuous`` (T, W, 6) force/torque windows,
``optical_flow`` (T, 128, 128, 2) or (T, 2, 128, 128), ``action`` and ``contact`` (T, ...). Sample
``episode * (T - 1) + t`` (t = 0 .. T-2) takes the inputs at step t and the targets at step t + 1, as MultiBench's
``MultimodalManipulationDataset`` does.

Modalities (images CHW): ``image`` (3, H, W), ``depth`` (1, H, W), ``flow`` (2, H, W), ``force`` signal (6, 32):
the last ``force_window`` steps of the window, ``tanh``-squashed (MultiBench ``ProcessForce(32, tanh=True)``),
``proprio`` vector (``proprio_dim`` = 8 first entries, MultiBench; OVA-IB's text says a 7-d pose).

Tasks (OVA-IB §B.1):

* ``contact``: next-step ``contact.sum() > 0`` (binary); default setting VFP (image, force, proprio);
* ``orientation``: next-step ``proprio[:4]`` (4-d regression, MultiBench ``ee_yaw_next``); default setting VFD;
* ``trajectory_pair``: do two tuples come from the same trajectory? The data set holds the tuples (task ``none``)
  with ``groups`` = episode; :func:`trajectory_pairs` draws the seeded, balanced pairs of a split. Default VFD;
  VFPD and VFPDO are the 4- and 5-modality settings.

Splits are by episode file and seeded (MultiBench's are unseeded).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mmib.data.dataset import DataValidationError, MultimodalDataset
from mmib.data.loaders._common import (
    allocate,
    build_dataset_from_file,
    check_array,
    check_choice,
    fail,
    finish,
    get_key,
    open_h5,
    pick_modalities,
    resolve_path,
    seeded_group_split,
)
from mmib.data.registry import register_dataset
from mmib.data.spec import DatasetSpec, ModalitySpec

VT_MODALITIES = ("image", "force", "proprio", "depth", "flow")
VT_TASKS = ("contact", "orientation", "trajectory_pair")
VT_SETTINGS = {
    "VFD": ("image", "force", "depth"),
    "VFP": ("image", "force", "proprio"),
    "VFPD": ("image", "force", "proprio", "depth"),
    "VFPDO": ("image", "force", "proprio", "depth", "flow"),
}
VT_DEFAULT_SETTING = {"contact": "VFP", "orientation": "VFD", "trajectory_pair": "VFD"}
#: file key of each modality
VT_KEYS = {"image": "image", "depth": "depth_data", "flow": "optical_flow", "force": "ee_forces_continuous",
           "proprio": "proprio"}  # fmt: skip


def _to_chw(a: np.ndarray, channels: int, file: Path, key: str) -> np.ndarray:
    """(T, H, W, C) / (T, C, H, W) / (T, H, W) for C = 1 → (T, C, H, W)."""
    if a.ndim == 3 and channels == 1:
        return a[:, None]
    if a.ndim == 4 and a.shape[1] == channels and a.shape[3] != channels:
        return a
    if a.ndim == 4 and a.shape[3] == channels:
        return np.transpose(a, (0, 3, 1, 2))
    if a.ndim == 4 and a.shape[1] == channels:
        return a
    exp = f"(T, H, W, {channels}) or (T, {channels}, H, W)" + (" or (T, H, W)" if channels == 1 else "")
    raise fail(file, key, f"shape {exp}", f"shape {tuple(a.shape)}")


def _read_episode(f, file: Path, mods: Sequence[str], task: str, proprio_dim: int, force_window: int):
    """The per-step arrays of one episode: ({modality: (T, ...)}, targets (T,...) or None, T)."""
    out: dict[str, np.ndarray] = {}
    for m in mods:
        a = check_array(get_key(f, VT_KEYS[m], file), file, VT_KEYS[m])
        if m == "image":
            out[m] = _to_chw(a, 3, file, VT_KEYS[m])
        elif m == "depth":
            out[m] = _to_chw(a, 1, file, VT_KEYS[m])
        elif m == "flow":
            out[m] = _to_chw(a, 2, file, VT_KEYS[m])
        elif m == "force":
            if a.ndim != 3 or a.shape[2] != 6 or a.shape[1] < force_window:
                raise fail(file, VT_KEYS[m], f"shape (T, W >= {force_window}, 6)", f"shape {tuple(a.shape)}")
            out[m] = np.tanh(a[:, -force_window:, :].astype(np.float32)).transpose(0, 2, 1)
        else:
            if a.ndim != 2 or a.shape[1] < proprio_dim:
                raise fail(file, "proprio", f"shape (T, >= {proprio_dim})", f"shape {tuple(a.shape)}")
            out[m] = a[:, :proprio_dim].astype(np.float32)
    target = None
    if task == "contact":
        c = check_array(get_key(f, "contact", file), file, "contact")
        target = (c.reshape(c.shape[0], -1).sum(axis=1) > 0).astype(np.int64)
        out["_target"] = target
    elif task == "orientation":
        p = check_array(get_key(f, "proprio", file), file, "proprio")
        if p.ndim != 2 or p.shape[1] < 4:
            raise fail(file, "proprio", "shape (T, >= 4) for the orientation target", f"shape {tuple(p.shape)}")
        out["_target"] = p[:, :4].astype(np.float32)
    lens = {k: v.shape[0] for k, v in out.items()}
    if len(set(lens.values())) != 1:
        detail = ", ".join(f"{VT_KEYS.get(k, 'target')}: {v}" for k, v in lens.items())
        raise DataValidationError(
            f"{file}: datasets have different numbers of steps ({detail}); expected one entry per step"
        )
    t = next(iter(lens.values()))
    if t < 2:
        raise fail(file, VT_KEYS[mods[0]], "an episode of at least 2 steps (inputs at t, targets at t + 1)",
                   f"{t} step(s)")  # fmt: skip
    return out, t


@register_dataset(
    "vision_touch",
    description="Vision & Touch episodes (h5): RGB, depth, force, proprio, flow; contact / orientation / trajectory pairs",
    requires=(("h5py", "data"),),
)
def load_vision_touch(
    path: str | None = None,
    task: str = "contact",
    setting: str | None = None,
    modalities: Sequence[str] | None = None,
    proprio_dim: int = 8,
    force_window: int = 32,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    max_episodes: int | None = None,
    cache_dir: str | None = None,
) -> MultimodalDataset:
    """Vision & Touch episodes from a folder of ``*.h5`` files (default ``$MMIB_DATA/vision_touch``).

    ``setting`` (VFD | VFP | VFPD | VFPDO) or an explicit ``modalities`` list picks the modalities (default: the
    OVA-IB setting of the task). ``val_fraction`` / ``test_fraction`` / ``seed``: the seeded split by episode.
    ``max_episodes``: read only the first episodes (sorted by file name). ``cache_dir``: write the arrays as
    memory-mapped ``.npy`` files there instead of holding them in RAM (images stay in their stored dtype).
    """
    check_choice("vision_touch: task", task, VT_TASKS)
    if modalities is not None and setting is not None:
        raise DataValidationError("vision_touch: give either 'setting' or 'modalities', not both")
    if modalities is None:
        setting = setting or VT_DEFAULT_SETTING[task]
        check_choice("vision_touch: setting", setting, tuple(VT_SETTINGS))
        mods = VT_SETTINGS[setting]
    else:
        mods = pick_modalities("vision_touch", modalities, VT_MODALITIES)
    if int(proprio_dim) < 1 or int(force_window) < 1:
        raise DataValidationError("vision_touch: proprio_dim and force_window must be >= 1")
    folder = resolve_path(path, "vision_touch", ["vision_touch", "triangle_real_data"], want="dir")
    files = sorted(folder.glob("*.h5"))
    if max_episodes is not None:
        files = files[: int(max_episodes)]
    if not files:
        raise DataValidationError(f"{folder}: no episode files (*.h5) in this folder")

    # pass 1: episode lengths and per-step shapes (from the first episode; later episodes must agree)
    shapes: dict[str, tuple[int, ...]] = {}
    dtypes: dict[str, np.dtype] = {}
    steps = []
    for i, file in enumerate(files):
        with open_h5(file, "data set 'vision_touch'") as f:
            if i == 0:
                arrays, t = _read_episode(f, file, mods, task, proprio_dim, force_window)
                shapes = {k: v.shape[1:] for k, v in arrays.items()}
                dtypes = {k: v.dtype for k, v in arrays.items()}
            else:
                key = VT_KEYS[mods[0]]
                t = int(get_key(f, key, file).shape[0])
        steps.append(t)
    n = int(sum(t - 1 for t in steps))
    x = {m: allocate((n, *shapes[m]), dtypes[m] if m in ("image", "depth", "flow") else np.float32,
                     cache_dir, f"vision_touch_{m}") for m in mods}  # fmt: skip
    y = None if task == "trajectory_pair" else np.empty((n, *shapes["_target"]), dtype=dtypes["_target"])
    groups = np.empty(n, dtype=np.int64)
    pos = 0
    for e, file in enumerate(files):
        with open_h5(file, "data set 'vision_touch'") as f:
            arrays, t = _read_episode(f, file, mods, task, proprio_dim, force_window)
        for k, v in arrays.items():
            if v.shape[1:] != shapes[k]:
                key = VT_KEYS.get(k, "contact" if task == "contact" else "proprio")
                raise fail(file, key, f"per-step shape {shapes[k]} (as in {files[0].name})", f"{v.shape[1:]}")
        k = t - 1
        for m in mods:
            x[m][pos : pos + k] = arrays[m][:-1]
        if y is not None:
            y[pos : pos + k] = arrays["_target"][1:]
        groups[pos : pos + k] = e
        pos += k
    x = {m: finish(a) for m, a in x.items()}
    split = seeded_group_split(groups, val_fraction, test_fraction, seed, f"vision_touch ({folder})")
    kinds = {"image": "image", "depth": "image", "flow": "image", "force": "signal", "proprio": "vector"}
    spec = DatasetSpec(
        name="vision_touch",
        modalities=tuple(ModalitySpec(m, kinds[m], shapes[m]) for m in mods),
        task={"contact": "classification", "orientation": "regression", "trajectory_pair": "none"}[task],
        n_classes=2 if task == "contact" else None,
        target_dim=4 if task == "orientation" else 1,
        description=f"Vision & Touch ({len(files)} episodes), task={task}"
        + (" (pairs from trajectory_pairs(); groups = episode)" if task == "trajectory_pair" else ""),
    )
    return build_dataset_from_file(folder, spec, x=x, y=y, groups=groups, split=split)


def trajectory_pairs(
    groups: np.ndarray, indices: np.ndarray | None = None, n_pairs: int | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded, balanced pairs for the trajectory-pair task: ``(a, b, same)`` sample indices and 0/1 labels.

    Half the pairs take two different samples of one trajectory (``same = 1``), half take samples of two different
    trajectories (``same = 0``). ``indices`` restricts the pairs to one split (pairs never cross splits);
    ``n_pairs`` defaults to the number of samples in ``indices``.
    """
    groups = np.asarray(groups).reshape(-1)
    idx = np.arange(len(groups)) if indices is None else np.asarray(indices, dtype=np.int64).reshape(-1)
    n_pairs = len(idx) if n_pairs is None else int(n_pairs)
    g = groups[idx]
    uniq, inverse = np.unique(g, return_inverse=True)
    members = [idx[inverse == k] for k in range(len(uniq))]
    multi = [k for k, mem in enumerate(members) if len(mem) >= 2]
    if len(uniq) < 2 or not multi:
        raise DataValidationError(
            f"trajectory pairs: need at least 2 trajectories and one with >= 2 samples, got {len(uniq)} trajectories"
        )
    rng = np.random.default_rng(seed)
    n_same = n_pairs // 2
    a, b = np.empty(n_pairs, dtype=np.int64), np.empty(n_pairs, dtype=np.int64)
    for i in range(n_same):
        mem = members[multi[rng.integers(len(multi))]]
        a[i], b[i] = rng.choice(mem, size=2, replace=False)
    for i in range(n_same, n_pairs):
        ga, gb = rng.choice(len(uniq), size=2, replace=False)
        a[i], b[i] = rng.choice(members[ga]), rng.choice(members[gb])
    same = np.r_[np.ones(n_same, dtype=np.int64), np.zeros(n_pairs - n_same, dtype=np.int64)]
    order = rng.permutation(n_pairs)
    return a[order], b[order], same[order]

