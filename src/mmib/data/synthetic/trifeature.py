"""``trifeature``: CoMM's bimodal Trifeature (Dufumier, Castillo-Navarro et al. 2025, §4.1, App. B.5; spec B.8),
rendered small with numpy for a CPU.

Each image shows one **shape** filled with a **texture** in a **colour** on a grey background (Hermann & Lampinen
2020's Trifeature). A sample is a pair of images (modalities ``x1``, ``x2``) that, as in CoMM's code
(``BimodalTrifeatures``: ``share_attr="shape"``, ``unique_attr="texture"``, ``synergy_attr=("texture", "color")``):

* **share the shape** (redundant information: task ``shape``);
* have independent textures, the **unique** information of each image (tasks ``texture_1``, ``texture_2``);
* have independent colours (``colour_1``, ``colour_2``: nuisance in experiment 1, half of the synergy in
  experiment 2);
* **synergy** (experiment 2): a fixed injective mapping M from textures to colours (CoMM: a bijection,
  ``zip(textures, permutation(colours))``) gives ``synergy = 1[colour_2 == M[texture_1]]``, a function of
  (texture of image 1, colour of image 2) that neither image determines alone (unbiased: I(X1;Y) = I(X2;Y) = 0).

``biased=True`` is CoMM's synergy pretraining set (spec B.8, D.3.7): with probability ``bias_q`` (CoMM: 1) a pair
respects M, colour_2 = M[texture_1], so the synergy label is constant (= 1) in pretraining; the probes of the paper
are fit and evaluated on unbiased pairs (build the same seed with ``biased=False``: the world — mapping, palette,
noise tile — depends on ``seed`` only). Experiment 1 (R, U) is ``biased=False`` with task ``shape`` /
``texture_<i>``; experiment 2 (S) pretrains on ``biased=True`` and probes ``task=synergy`` on ``biased=False``.

Rendering (our small-resolution decisions, see ``docs/guide/trifeature.md``): the image is drawn on a
``supersample``× finer grid and box-averaged (anti-aliasing). The shape lies inside a disk of radius
``shape_scale`` (in half-image units), is rotated by U(±``max_rotation``)° and shifted by U(±``max_shift`` × free
space) — always fully inside the image (the paper: rotation ±45°, random position). The texture is a periodic
pattern of period ``texture_period`` output pixels (default 3/16 of the image), rotated by
U(±``max_texture_rotation``)° and shifted by a random phase; texture-on pixels take the colour, texture-off pixels
inside the shape the colour darkened by ``texture_contrast`` (the paper leaves them grey; at 32 px that dissolves
the silhouette of sparse textures). The ten textures are CoMM's list with ``checker`` in place of ``hexgrid``.
Optional pixel noise N(0, ``noise``²) (clipped to [0, 1]) is the only thing not determined by the latents: every
image is ``renderer.render(shape, texture, colour, pose)`` of its latents (``pose_<i>`` = rotation°, shift_y,
shift_x, texture rotation°, texture phase_y, phase_x) and the data set's ``renderer`` reproduces it exactly.

Pixels are in [0, 1] (the image augmentations expect that range; the packaged config sets ``standardize: false``).
The data set's ``information`` attribute holds the exact information (bits) of the latent content X_i = (shape,
texture_i, colour_i) about each task: H, I(X1;T), I(X2;T), I(X1,X2;T) and the minimum-MI PID.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mmib.data.dataset import DataValidationError, MultimodalDataset
from mmib.data.registry import register_dataset
from mmib.data.spec import DatasetSpec, ModalitySpec

SHAPES = ("circle", "square", "triangle", "plus", "star", "tee", "rhombus", "pentagon", "fivesquare", "trapezoid")
TEXTURES = ("solid", "stripes", "grid", "dots", "checker", "zigzags", "noise", "pluses", "triangles", "rain")
COLOURS = {  # CoMM's / Trifeature's ten colours (RGB in [0, 1])
    "red": (0.9, 0.05, 0.05), "green": (0.05, 0.75, 0.1), "blue": (0.1, 0.2, 0.95), "yellow": (0.95, 0.9, 0.1),
    "pink": (1.0, 0.45, 0.75), "cyan": (0.1, 0.9, 0.9), "purple": (0.55, 0.1, 0.8), "ocean": (0.05, 0.45, 0.55),
    "orange": (1.0, 0.55, 0.0), "white": (1.0, 1.0, 1.0),
}
BACKGROUND = 0.5
TASKS = ("shape", "texture_1", "texture_2", "colour_1", "colour_2", "synergy")
TASK_ALIASES = {"redundant": "shape", "unique_1": "texture_1", "unique_2": "texture_2"}
POSE_FIELDS = ("rotation_deg", "shift_y", "shift_x", "texture_rotation_deg", "texture_phase_y", "texture_phase_x")
_NOISE_TILE = 8


def _err(msg: str) -> DataValidationError:
    return DataValidationError(f"trifeature: {msg}")


# ------------------------------------------------------------------------------------------------ geometry
def _regular(k: int, radius: float, start_deg: float = 90.0) -> np.ndarray:
    a = np.deg2rad(start_deg + 360.0 * np.arange(k) / k)
    return np.stack([radius * np.cos(a), radius * np.sin(a)], 1)


def _star(outer: float = 1.0, inner: float = 0.42) -> np.ndarray:
    a = np.deg2rad(90.0 + 36.0 * np.arange(10))
    r = np.where(np.arange(10) % 2 == 0, outer, inner)
    return np.stack([r * np.cos(a), r * np.sin(a)], 1)


def _rect(x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])


#: every shape as a union of polygons (x, y) inside the unit disk, so that any rotation stays inside it
_POLYGONS: dict[str, list[np.ndarray]] = {
    "triangle": [_regular(3, 1.0)],
    "square": [_rect(-0.68, 0.68, -0.68, 0.68)],
    "plus": [_rect(-0.3, 0.3, -0.92, 0.92), _rect(-0.92, 0.92, -0.3, 0.3)],
    "star": [_star()],
    "tee": [_rect(-0.75, 0.75, 0.25, 0.65), _rect(-0.24, 0.24, -0.9, 0.25)],
    "rhombus": [np.array([[0.0, -0.97], [0.55, 0.0], [0.0, 0.97], [-0.55, 0.0]])],
    "pentagon": [_regular(5, 0.95)],
    "fivesquare": [_rect(cx - 0.22, cx + 0.22, cy - 0.22, cy + 0.22)
                   for cx, cy in ((0, 0), (-0.48, -0.48), (0.48, -0.48), (-0.48, 0.48), (0.48, 0.48))],
    "trapezoid": [np.array([[-0.9, -0.4], [0.9, -0.4], [0.45, 0.4], [-0.45, 0.4]])],
}


def _inside_polygon(x: np.ndarray, y: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd crossing test of the points (x, y) against a closed polygon."""
    inside = np.zeros(x.shape, dtype=bool)
    n = len(poly)
    for i in range(n):
        (x0, y0), (x1, y1) = map(float, poly[i]), map(float, poly[(i + 1) % n])
        if y0 == y1:
            continue
        cross = (y0 > y) != (y1 > y)
        xc = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        inside ^= cross & (x < xc)
    return inside


def _inside_shape(name: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    if name == "circle":
        return x * x + y * y <= 0.85**2
    out = np.zeros(x.shape, dtype=bool)
    for poly in _POLYGONS[name]:
        out |= _inside_polygon(x, y, poly)
    return out


def _texture(name: str, a: np.ndarray, b: np.ndarray, period: float, tile: np.ndarray) -> np.ndarray:
    """Texture mask (1 = on) at texture-frame coordinates (a, b) in output pixels."""
    f, g = (a / period) % 1.0, (b / period) % 1.0
    if name == "solid":
        return np.ones(a.shape, dtype=bool)
    if name == "stripes":
        return f < 0.5
    if name == "grid":
        return (f < 0.3) | (g < 0.3)
    if name == "dots":
        return (f - 0.5) ** 2 + (g - 0.5) ** 2 < 0.32**2
    if name == "checker":
        return (np.floor(a / period * 2) + np.floor(b / period * 2)) % 2 == 0
    if name == "zigzags":
        return ((a / period + np.abs(2 * g - 1)) % 1.0) < 0.5
    if name == "noise":  # a fixed random tile (part of the world), so the latents still determine the image
        cell = max(period / 2, 1.0)
        i = np.floor(a / cell).astype(np.int64) % tile.shape[0]
        j = np.floor(b / cell).astype(np.int64) % tile.shape[1]
        return tile[i, j]
    if name == "pluses":
        fa, ga = np.abs(f - 0.5), np.abs(g - 0.5)
        return ((fa < 0.14) & (ga < 0.42)) | ((ga < 0.14) & (fa < 0.42))
    if name == "triangles":
        return f > np.abs(2 * g - 1)
    if name == "rain":  # short dashes in staggered rows
        row = np.floor(a / period)
        return (f < 0.3) & (((b / (2 * period) + 0.5 * row) % 1.0) < 0.45)
    raise _err(f"unknown texture {name!r}")  # pragma: no cover - validated before


@dataclass(frozen=True)
class TrifeatureRenderer:
    """Draws Trifeature images from their latents (the module docstring describes the geometry).

    ``render(shape, texture, colour, pose)`` takes integer indices into ``shapes`` / ``textures`` / ``colours``
    and the (N, 6) pose (``POSE_FIELDS``) and returns (N, 3, H, W) float32 images in [0, 1] without noise.
    """

    image_size: int
    shapes: tuple[str, ...]
    textures: tuple[str, ...]
    colours: tuple[str, ...]
    shape_scale: float
    texture_period: float
    texture_contrast: float
    supersample: int
    noise_tile: np.ndarray
    chunk: int = 1024

    def render(self, shape: np.ndarray, texture: np.ndarray, colour: np.ndarray, pose: np.ndarray) -> np.ndarray:
        shape, texture, colour = (np.asarray(v, dtype=np.int64).reshape(-1) for v in (shape, texture, colour))
        pose = np.asarray(pose, dtype=np.float64).reshape(len(shape), len(POSE_FIELDS))
        out = np.empty((len(shape), 3, self.image_size, self.image_size), dtype=np.float32)
        for s in range(0, len(shape), self.chunk):
            sl = slice(s, s + self.chunk)
            out[sl] = self._render_chunk(shape[sl], texture[sl], colour[sl], pose[sl])
        return out

    def _render_chunk(self, shape, texture, colour, pose) -> np.ndarray:
        n, h, ss = len(shape), self.image_size, self.supersample
        fine = h * ss
        f32 = np.float32
        centres = ((np.arange(fine) + 0.5) / fine * 2 - 1).astype(f32)  # [-1, 1], half-image units
        py, px = centres[None, :, None], centres[None, None, :]

        def col(j: int) -> np.ndarray:
            return pose[:, j].astype(f32)[:, None, None]

        rot = np.deg2rad(pose[:, 0]).astype(f32)[:, None, None]
        cy, cx = py - col(1), px - col(2)
        c, s_ = np.cos(rot), np.sin(rot)
        # shape frame: rotate back by the shape's angle, scale to the unit disk; y axis points up
        lx = (c * cx + s_ * cy) / f32(self.shape_scale)
        ly = (s_ * cx - c * cy) / f32(self.shape_scale)
        inside = np.zeros((n, fine, fine), dtype=bool)
        for k in np.unique(shape):
            idx = np.flatnonzero(shape == k)
            inside[idx] = _inside_shape(self.shapes[k], lx[idx], ly[idx])
        # texture frame in output pixels: rotated about the image centre, shifted by the phase
        trot = np.deg2rad(pose[:, 3]).astype(f32)[:, None, None]
        tc, ts = np.cos(trot), np.sin(trot)
        ppy, ppx = py * f32(h / 2), px * f32(h / 2)
        ta = tc * ppy - ts * ppx + col(4)
        tb = ts * ppy + tc * ppx + col(5)
        on = np.zeros((n, fine, fine), dtype=bool)
        for k in np.unique(texture):
            idx = np.flatnonzero(texture == k)
            on[idx] = _texture(self.textures[k], ta[idx], tb[idx], self.texture_period, self.noise_tile)
        # the colour is constant per image, so box-averaging commutes with colouring: pool two scalar maps
        shade = np.where(on, f32(1.0), f32(1.0 - self.texture_contrast)) * inside
        cover = inside.astype(f32)
        if ss > 1:
            shade = shade.reshape(n, h, ss, h, ss).mean(axis=(2, 4))
            cover = cover.reshape(n, h, ss, h, ss).mean(axis=(2, 4))
        rgb = np.array([COLOURS[name] for name in self.colours], dtype=f32)[colour]  # (n, 3)
        img = rgb[:, :, None, None] * shade[:, None] + f32(BACKGROUND) * (1 - cover)[:, None]
        return img.astype(np.float32)


# ------------------------------------------------------------------------------------------------ options
def _pick(option: str, value: int | Sequence[str], catalogue: Sequence[str]) -> tuple[str, ...]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if not 2 <= int(value) <= len(catalogue):
            raise _err(f"{option} must be a count in [2, {len(catalogue)}] or a list of names, got {value}")
        return tuple(catalogue[: int(value)])
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise _err(f"{option} must be a count in [2, {len(catalogue)}] or a list of names from "
                   f"{', '.join(catalogue)}; got {value!r}")
    names = tuple(str(v) for v in value)
    bad = [v for v in names if v not in catalogue]
    if bad:
        raise _err(f"{option}: unknown name(s) {', '.join(map(repr, bad))}; valid: {', '.join(catalogue)}")
    if len(set(names)) != len(names) or len(names) < 2:
        raise _err(f"{option} needs at least 2 distinct names, got {list(names)}")
    return names


def _check_range(option: str, value: float, lo: float, hi: float, lo_open: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise _err(f"{option} must be a number, got {value!r}") from None
    if not (math.isfinite(v) and (lo < v if lo_open else lo <= v) and v <= hi):
        raise _err(f"{option} must lie in {'(' if lo_open else '['}{lo}, {hi}], got {value!r}")
    return v


def _check_int(option: str, value: int, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= int(value) <= hi:
        raise _err(f"{option} must be an integer in [{lo}, {hi}], got {value!r}")
    return int(value)


# ------------------------------------------------------------------------------------------------ information
def _entropy_of_codes(codes: np.ndarray, p: np.ndarray) -> float:
    _, inv = np.unique(codes, return_inverse=True)
    q = np.bincount(inv.reshape(-1), weights=p)
    q = q[q > 0]
    return max(0.0, float(-(q * np.log2(q)).sum()))


def trifeature_information(n_shapes: int, n_textures: int, n_colours: int, mapping: np.ndarray,
                           biased: bool = False, bias_q: float = 1.0) -> dict:
    """Exact information (bits) of the latent content X_i = (shape, texture_i, colour_i) about every task, from the
    enumerated joint distribution (minimum-MI PID for M = 2)."""
    s, t1, c1, t2, c2 = np.meshgrid(np.arange(n_shapes), np.arange(n_textures), np.arange(n_colours),
                                    np.arange(n_textures), np.arange(n_colours), indexing="ij")
    s, t1, c1, t2, c2 = (v.reshape(-1) for v in (s, t1, c1, t2, c2))
    p = np.full(s.shape, 1.0 / (n_shapes * n_textures**2 * n_colours**2))
    if biased:
        hit = c2 == mapping[t1]
        p = p * (1 - bias_q) + np.where(hit, bias_q * n_colours, 0.0) * p
    syn = (c2 == mapping[t1]).astype(np.int64)
    x1 = (s * n_textures + t1) * n_colours + c1
    x2 = (s * n_textures + t2) * n_colours + c2
    x12 = x1 * (n_shapes * n_textures * n_colours) + x2
    targets = {"shape": (s, n_shapes), "texture_1": (t1, n_textures), "texture_2": (t2, n_textures),
               "colour_1": (c1, n_colours), "colour_2": (c2, n_colours), "synergy": (syn, 2)}
    info: dict = {"units": "bits", "targets": {}}
    hx = {"1": _entropy_of_codes(x1, p), "2": _entropy_of_codes(x2, p), "1+2": _entropy_of_codes(x12, p)}
    for name, (t, k) in targets.items():
        ht = _entropy_of_codes(t, p)
        mi = {}
        for key, x in (("1", x1), ("2", x2), ("1+2", x12)):
            mi[key] = max(0.0, hx[key] + ht - _entropy_of_codes(x * k + t, p))
        red = min(mi["1"], mi["2"])
        info["targets"][name] = {"H": ht, "I": mi, "PID": {"R": red, "U1": mi["1"] - red, "U2": mi["2"] - red,
                                                         "S": mi["1+2"] - mi["1"] - mi["2"] + red}}
    return info


# ------------------------------------------------------------------------------------------------ generator
def make_trifeature(n_samples: int = 6000, image_size: int = 32, shapes: int | Sequence[str] = 10,
                    textures: int | Sequence[str] = 10, colours: int | Sequence[str] = 10, task: str = "shape",
                    biased: bool = False, bias_q: float = 1.0, max_rotation: float = 45.0, max_shift: float = 1.0,
                    max_texture_rotation: float = 45.0, shape_scale: float = 0.75, texture_period: float | None = None,
                    texture_contrast: float = 0.6, supersample: int = 2, noise: float = 0.0,
                    seed: int = 0) -> MultimodalDataset:
    """The bimodal Trifeature generator (see the module docstring).

    Args:
        n_samples: number of image pairs.
        image_size: H = W in pixels (16..256).
        shapes, textures, colours: a count (the first k of ``SHAPES`` / ``TEXTURES`` / ``COLOURS``) or a list of
            names. Synergy needs ``len(colours) >= len(textures)`` (M maps textures injectively to colours).
        task: ``y``: ``shape`` (R), ``texture_1`` / ``texture_2`` (U1 / U2), ``colour_1``, ``colour_2`` or
            ``synergy`` (S); aliases ``redundant``, ``unique_1``, ``unique_2``.
        biased: CoMM's biased pretraining pairs (colour_2 = M[texture_1] with probability ``bias_q``).
        max_rotation, max_texture_rotation: rotation ranges in degrees (0..180).
        max_shift: fraction (0..1) of the free space the shape may move by.
        shape_scale: radius of the shape's disk in half-image units (0.3..1).
        texture_period: texture period in output pixels (2..image_size); ``None``: 3/16 of ``image_size`` (6 px
            at 32 px).
        texture_contrast: darkening of texture-off pixels inside the shape (0 < c <= 1).
        supersample: anti-aliasing factor (1..8).
        noise: std of Gaussian pixel noise (0..0.5), clipped to [0, 1].
        seed: seeds the world (mapping M, noise tile) and the samples.
    """
    n = _check_int("n_samples", n_samples, 2, 1_000_000)
    h = _check_int("image_size", image_size, 16, 256)
    ss = _check_int("supersample", supersample, 1, 8)
    shape_names = _pick("shapes", shapes, SHAPES)
    texture_names = _pick("textures", textures, TEXTURES)
    colour_names = _pick("colours", colours, tuple(COLOURS))
    task = TASK_ALIASES.get(str(task), str(task))
    if task not in TASKS:
        raise _err(f"unknown task {task!r}; valid: {', '.join(TASKS + tuple(TASK_ALIASES))}")
    if not isinstance(biased, (bool, np.bool_)):
        raise _err(f"biased must be true or false, got {biased!r}")
    bias_q = _check_range("bias_q", bias_q, 0.0, 1.0)
    max_rotation = _check_range("max_rotation", max_rotation, 0.0, 180.0)
    max_texture_rotation = _check_range("max_texture_rotation", max_texture_rotation, 0.0, 180.0)
    max_shift = _check_range("max_shift", max_shift, 0.0, 1.0)
    shape_scale = _check_range("shape_scale", shape_scale, 0.3, 1.0)
    if texture_period is None:
        texture_period = 3 * h / 16
    texture_period = _check_range("texture_period", texture_period, 2.0, float(h))
    texture_contrast = _check_range("texture_contrast", texture_contrast, 0.0, 1.0, lo_open=True)
    noise = _check_range("noise", noise, 0.0, 0.5)
    n_s, n_t, n_c = len(shape_names), len(texture_names), len(colour_names)
    if n_c < n_t:
        raise _err(f"the synergy mapping M sends each texture to its own colour, so colours ({n_c}) must be >= "
                   f"textures ({n_t})")

    world = np.random.default_rng([seed, 0])  # fixed structure: the mapping M and the noise texture's tile
    mapping = world.permutation(n_c)[:n_t]  # CoMM: zip(sorted textures, permutation(colours))
    tile = world.random((_NOISE_TILE, _NOISE_TILE)) < 0.5
    renderer = TrifeatureRenderer(h, shape_names, texture_names, colour_names, shape_scale, texture_period,
                                  texture_contrast, ss, tile)

    rng = np.random.default_rng([seed, 1, int(bool(biased))])
    shape = rng.integers(0, n_s, n)
    tex = [rng.integers(0, n_t, n) for _ in range(2)]
    col = [rng.integers(0, n_c, n) for _ in range(2)]
    if biased:
        follow = rng.random(n) < bias_q
        col[1] = np.where(follow, mapping[tex[0]], col[1])
    free = 1.0 - shape_scale
    poses = []
    for _ in range(2):
        pose = np.stack([
            rng.uniform(-max_rotation, max_rotation, n),
            rng.uniform(-1, 1, n) * free * max_shift,
            rng.uniform(-1, 1, n) * free * max_shift,
            rng.uniform(-max_texture_rotation, max_texture_rotation, n),
            rng.uniform(0, texture_period, n),
            rng.uniform(0, texture_period, n),
        ], 1)
        poses.append(pose)
    x = {}
    for i in range(2):
        img = renderer.render(shape, tex[i], col[i], poses[i])
        if noise > 0:
            img = np.clip(img + noise * rng.standard_normal(img.shape).astype(np.float32), 0.0, 1.0)
        x[f"x{i + 1}"] = img
    synergy = (col[1] == mapping[tex[0]]).astype(np.int64)
    latents = {"shape": shape, "texture_1": tex[0], "colour_1": col[0], "texture_2": tex[1], "colour_2": col[1],
               "synergy": synergy, "pose_1": poses[0].astype(np.float32), "pose_2": poses[1].astype(np.float32)}
    sizes = {"shape": n_s, "texture_1": n_t, "colour_1": n_c, "texture_2": n_t, "colour_2": n_c, "synergy": 2}
    spec = DatasetSpec(
        name="trifeature",
        modalities=tuple(ModalitySpec(f"x{i + 1}", "image", (3, h, h)) for i in range(2)),
        task="classification",
        n_classes=sizes[task],
        latents=sizes,
        description=(f"bimodal Trifeature {h}x{h}: shared shape ({n_s}), unique textures ({n_t}), colours ({n_c}), "
                     f"synergy = 1[colour_2 = M(texture_1)]; task {task}"
                     + (f", biased (q={bias_q})" if biased else "")),
    )
    ds = MultimodalDataset(spec, x, y=latents[task], latents=latents)
    ds.renderer = renderer
    ds.synergy_mapping = {texture_names[t]: colour_names[c] for t, c in enumerate(mapping)}
    ds.information = trifeature_information(n_s, n_t, n_c, mapping, bool(biased), bias_q)
    ds.information.update({"task": task, "mapping": ds.synergy_mapping})
    return ds


@register_dataset("trifeature", description="CoMM's bimodal Trifeature (numpy-rendered): shared shape, unique "
                                            "textures, texture-colour synergy")
def load_trifeature(n_samples: int = 6000, image_size: int = 32, shapes: int | Sequence[str] = 10,
                    textures: int | Sequence[str] = 10, colours: int | Sequence[str] = 10, task: str = "shape",
                    biased: bool = False, bias_q: float = 1.0, max_rotation: float = 45.0, max_shift: float = 1.0,
                    max_texture_rotation: float = 45.0, shape_scale: float = 0.75, texture_period: float | None = None,
                    texture_contrast: float = 0.6, supersample: int = 2, noise: float = 0.0,
                    seed: int = 0) -> MultimodalDataset:
    """CoMM's bimodal Trifeature rendered small with numpy (spec B.8)."""
    return make_trifeature(n_samples, image_size, shapes, textures, colours, task, biased, bias_q, max_rotation,
                           max_shift, max_texture_rotation, shape_scale, texture_period, texture_contrast,
                           supersample, noise, seed)
