"""MuJoCo Push ("gentle push", Lee et al. 2020 multimodal filters; MultiBench ``datasets/gentle_push``).

Files (fannypack ``TrajectoriesFile`` layout): ``gentle_push_1000.hdf5`` (train), ``gentle_push_10.hdf5`` (val),
``gentle_push_300.hdf5`` (test); each holds groups ``trajectory0``, ``trajectory1``, ... with datasets
``Cylinder0_pos`` (T, >= 2), ``eef_pos`` (T, 3), ``force`` (T, 6), ``contact`` (T,), ``image`` (T, 32, 32) and
``object-state``.

OVA-IB modalities (paper §B.1), windows of ``history`` = 32 steps ending at step t:

* ``image``: the grayscale frames t-31..t as a 32-channel image (32, 32, 32);
* ``force``: the force/torque history, signal (6, 32);
* ``proprio``: the end-effector history, signal (7, 32): MultiBench's 7-d "controls" per step = previous
  ``eef_pos`` (3), ``eef_pos`` delta (3) and ``contact`` (1) (our reading of the paper's "pose history [32×7]").

Target: the object's next-step planar position ``Cylinder0_pos[t + 1, :2]`` (2-d regression). Windows start every
``stride`` steps. MultiBench normalizes every channel with fixed constants; here the values stay raw and the data
module fits the per-channel standardization on the train split (``standardize: true``). Only
:meth:`mmib.MultimodalModel.save <mmib.api.MultimodalModel.save>` stores these constants with the model. Lightning
checkpoints and ``run.json`` do not: :func:`mmib.runs.load_run` (``mmib eval``) rebuilds the data module from the
run's config and recomputes them from the training split of the same files (the same values while the files and
split options are unchanged). Splits are the three files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mmib.data.dataset import DataValidationError, MultimodalDataset
from mmib.data.loaders._common import (
    allocate,
    build_dataset_from_file,
    check_array,
    fail,
    finish,
    get_key,
    open_h5,
    pick_modalities,
    resolve_path,
)
from mmib.data.registry import register_dataset
from mmib.data.spec import DatasetSpec, ModalitySpec

PUSH_MODALITIES = ("image", "force", "proprio")
PUSH_FILES = {"train": "gentle_push_1000.hdf5", "val": "gentle_push_10.hdf5", "test": "gentle_push_300.hdf5"}


def _trajectory_keys(f, file) -> list[str]:
    keys = [k for k in f.keys() if k.startswith("trajectory") and k[len("trajectory") :].isdigit()]
    if not keys:
        raise DataValidationError(
            f"{file}: no trajectory groups (expected groups 'trajectory0', 'trajectory1', ...; "
            f"present keys: {', '.join(sorted(f.keys())) or '(none)'})"
        )
    return sorted(keys, key=lambda k: int(k[len("trajectory") :]))


def _read_trajectory(g, file, where: str, history: int) -> dict[str, np.ndarray]:
    def arr(key, shape):
        return check_array(get_key(g, key, file, where=where), file, f"{where}/{key}", shape=shape)

    image = arr("image", (None, None, None))
    t = image.shape[0]
    eef = arr("eef_pos", (t, 3))
    force = arr("force", (t, 6))
    contact = check_array(get_key(g, "contact", file, where=where), file, f"{where}/contact", ndim=(1, 2))
    if contact.shape[0] != t or contact.size != t:
        raise fail(file, f"{where}/contact", f"shape ({t},) (one value per step)", f"shape {contact.shape}")
    pos = arr("Cylinder0_pos", (t, None))
    if pos.shape[1] < 2:
        raise fail(file, f"{where}/Cylinder0_pos", f"shape ({t}, >= 2)", f"shape {pos.shape}")
    if t < history + 1:
        raise fail(file, f"{where}/image", f"at least history + 1 = {history + 1} steps", f"{t} steps")
    eef = eef.astype(np.float32)
    prev = np.roll(eef, 1, axis=0)
    prev[0] = eef[0]
    controls = np.concatenate([prev, eef - prev, contact.reshape(t, 1).astype(np.float32)], axis=1)
    return {"image": image, "force": force.astype(np.float32), "proprio": controls,
            "target": pos[:, :2].astype(np.float32)}  # fmt: skip


def _window_ends(t: int, history: int, stride: int) -> np.ndarray:
    """Last input step of each window: history-1, history-1+stride, ... <= t-2 (the target is at end + 1)."""
    return np.arange(history - 1, t - 1, stride)


@register_dataset(
    "mujoco_push",
    description="MuJoCo Push (gentle_push_*.hdf5): image / force / proprio histories -> next object position",
    requires=(("h5py", "data"),),
)
def load_mujoco_push(
    path: str | None = None,
    modalities: Sequence[str] | None = None,
    history: int = 32,
    stride: int = 16,
    files: Mapping[str, str] | None = None,
    max_trajectories: int | None = None,
    cache_dir: str | None = None,
) -> MultimodalDataset:
    """MuJoCo Push from a folder holding the three files (default ``$MMIB_DATA/mujoco_push``).

    ``files`` overrides the file name per split (keys train, val, test). ``max_trajectories`` reads only the first
    trajectories of each file. ``cache_dir``: write the windows as memory-mapped ``.npy`` files there.
    """
    mods = pick_modalities("mujoco_push", modalities, PUSH_MODALITIES)
    history, stride = int(history), int(stride)
    if history < 1 or stride < 1:
        raise DataValidationError(f"mujoco_push: history and stride must be >= 1, got {history}, {stride}")
    names = dict(PUSH_FILES)
    if files is not None:
        unknown = set(files) - set(PUSH_FILES)
        if unknown:
            raise DataValidationError(f"mujoco_push: 'files' keys must be train, val, test; got {sorted(unknown)}")
        names.update(files)
    folder = resolve_path(path, "mujoco_push", ["mujoco_push", "gentle_push"], want="dir")
    paths = {s: resolve_path(folder / n, "mujoco_push", [n]) for s, n in names.items()}

    # pass 1: count windows and read the image size
    counts: dict[str, list[tuple[str, int]]] = {}
    hw = None
    for s, file in paths.items():
        with open_h5(file, "data set 'mujoco_push'") as f:
            keys = _trajectory_keys(f, file)[: max_trajectories]
            counts[s] = []
            for k in keys:
                img = get_key(get_key(f, k, file), "image", file, where=k)
                if len(img.shape) != 3:
                    raise fail(file, f"{k}/image", "shape (T, H, W) (grayscale frames)", f"shape {tuple(img.shape)}")
                if hw is None:
                    hw = tuple(img.shape[1:])
                elif tuple(img.shape[1:]) != hw:
                    raise fail(file, f"{k}/image", f"frames of size {hw} (as in the first trajectory)",
                               f"{tuple(img.shape[1:])}")  # fmt: skip
                counts[s].append((k, len(_window_ends(img.shape[0], history, stride))))
    n = sum(c for v in counts.values() for _, c in v)
    if n == 0:
        raise DataValidationError(f"{folder}: no trajectory is longer than history + 1 = {history + 1} steps")
    shapes = {"image": (history, *hw), "force": (6, history), "proprio": (7, history)}
    x = {m: allocate((n, *shapes[m]), np.float32, cache_dir, f"mujoco_push_{m}") for m in mods}
    y = np.empty((n, 2), dtype=np.float32)
    groups = np.empty(n, dtype="<U64")
    split = np.empty(n, dtype="<U5")
    pos = 0
    for s, file in paths.items():
        with open_h5(file, "data set 'mujoco_push'") as f:
            for k, c in counts[s]:
                if c == 0:
                    continue
                tr = _read_trajectory(f[k], file, k, history)
                ends = _window_ends(tr["image"].shape[0], history, stride)
                win = ends[:, None] + np.arange(-history + 1, 1)[None, :]  # (c, history)
                if "image" in mods:
                    x["image"][pos : pos + c] = tr["image"][win]
                for m in ("force", "proprio"):
                    if m in mods:
                        x[m][pos : pos + c] = tr[m][win].transpose(0, 2, 1)
                y[pos : pos + c] = tr["target"][ends + 1]
                groups[pos : pos + c] = f"{s}/{k}"
                split[pos : pos + c] = s
                pos += c
    x = {m: finish(a) for m, a in x.items()}
    kinds = {"image": "image", "force": "signal", "proprio": "signal"}
    spec = DatasetSpec(
        name="mujoco_push",
        modalities=tuple(ModalitySpec(m, kinds[m], shapes[m]) for m in mods),
        task="regression",
        target_dim=2,
        description=f"MuJoCo Push, {history}-step histories every {stride} steps -> next object (x, y)",
    )
    return build_dataset_from_file(folder, spec, x=x, y=y, groups=groups, split=split)
