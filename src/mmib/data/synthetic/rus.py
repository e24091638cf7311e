"""``rus_sim``: vectors with known redundant, unique and synergistic information (spec D.4; our construction).

Per sample, independent latents: a redundant code r ~ U{0..K_R−1} (in every modality), unique codes
u_m ~ U{0..K_U−1}, synergy carriers s_m ~ Bernoulli(½) and nuisances n_m ~ N(0, I). Modality m is

    x_m = T_m [E_R[r]; E_U,m[u_m]; (2 s_m − 1) v_m; n_m] + σ ε_m

with Gaussian codebooks E_R (shared by all modalities), E_U,m, carrier vectors v_m and fixed random maps T_m
(``transform="linear"``: full-rank linear; ``"mlp"``: a fixed random 2-layer tanh network). The synergy label is
the XOR of all carriers, s_1 ⊕ … ⊕ s_M: independent of every proper subset of the modalities.

``biased=True`` is CoMM's biased pretraining (§4.1, spec D.3.7): with probability ``bias_q`` a sample's carriers
all copy s_1, so in pretraining the carriers are (mostly) redundant; evaluate on the unbiased variant.

The data set's ``information`` attribute holds the exact information values of the latent content (noise-free
modalities, in bits), computed from the enumerated discrete distribution: H of each target, I(X_A; T) for every
non-empty subset A of modalities, and for M = 2 the PID (R, U1, U2, S) of each target (minimum-MI redundancy,
which for these targets equals every PID with non-negative atoms).
"""

from __future__ import annotations

import itertools

import numpy as np

from mmib.data.dataset import DataValidationError, MultimodalDataset
from mmib.data.registry import register_dataset
from mmib.data.spec import DatasetSpec, ModalitySpec


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return max(0.0, float(-(p * np.log2(p)).sum()))


def _mi(joint: dict[tuple, float]) -> float:
    """I(A; B) in bits from {(a, b): p}."""
    pa: dict = {}
    pb: dict = {}
    for (a, b), p in joint.items():
        pa[a] = pa.get(a, 0.0) + p
        pb[b] = pb.get(b, 0.0) + p
    return _entropy(np.array(list(pa.values()))) + _entropy(np.array(list(pb.values()))) - _entropy(
        np.array(list(joint.values())))


def rus_information(n_modalities: int, k_redundant: int, k_unique: int, biased: bool = False,
                    bias_q: float = 1.0) -> dict:
    """Exact information (bits) between the latent content X_m = (r, u_m, s_m) of subsets of modalities and each
    target, from the enumerated distribution of the latents."""
    m = n_modalities
    states = []
    for r in range(k_redundant):
        for us in itertools.product(range(k_unique), repeat=m):
            for ss in itertools.product((0, 1), repeat=m):
                p_s = 0.5**m
                if biased:
                    copy = all(s == ss[0] for s in ss)
                    p_s = (1 - bias_q) * 0.5**m + (bias_q * 0.5 if copy else 0.0)
                if p_s == 0:
                    continue
                states.append(((r, us, ss), p_s / (k_redundant * k_unique**m)))
    targets = {"redundant": lambda st: st[0], "synergy": lambda st: int(sum(st[2]) % 2)}
    for i in range(m):
        targets[f"unique_{i + 1}"] = lambda st, i=i: st[1][i]
    content = lambda st, i: (st[0], st[1][i], st[2][i])  # noqa: E731
    info: dict = {"units": "bits", "targets": {}}
    subsets = [c for k in range(1, m + 1) for c in itertools.combinations(range(m), k)]
    for name, fn in targets.items():
        ht: dict = {}
        for st, p in states:
            ht[fn(st)] = ht.get(fn(st), 0.0) + p
        entry = {"H": _entropy(np.array(list(ht.values())))}
        mi = {}
        for sub in subsets:
            joint: dict = {}
            for st, p in states:
                key = (tuple(content(st, i) for i in sub), fn(st))
                joint[key] = joint.get(key, 0.0) + p
            mi["+".join(str(i + 1) for i in sub)] = _mi(joint)
        entry["I"] = mi
        if m == 2:
            i1, i2, i12 = mi["1"], mi["2"], mi["1+2"]
            red = min(i1, i2)
            entry["PID"] = {"R": red, "U1": i1 - red, "U2": i2 - red, "S": i12 - i1 - i2 + red}
        info["targets"][name] = entry
    return info


def _fixed_map(rng: np.random.Generator, d_in: int, d_out: int, transform: str):
    if transform == "linear":
        a = rng.standard_normal((d_out, d_in)) / np.sqrt(d_in)
        return lambda z: z @ a.T
    w1 = rng.standard_normal((d_out, d_in)) / np.sqrt(d_in)
    w2 = rng.standard_normal((d_out, d_out)) / np.sqrt(d_out)
    return lambda z: np.tanh(z @ w1.T) @ w2.T


def make_rus(n_samples: int = 6000, n_modalities: int = 2, k_redundant: int = 4, k_unique: int = 4,
             code_dim: int = 8, nuisance_dim: int = 4, dim: int = 32, noise: float = 0.1, transform: str = "linear",
             biased: bool = False, bias_q: float = 1.0, target: str = "synergy", seed: int = 0) -> MultimodalDataset:
    """The R/U/S generator (see the module docstring). ``target`` picks ``y``: ``synergy``, ``redundant`` or
    ``unique_<k>`` (1-based modality index); every latent is also in ``latents``."""
    if n_modalities < 2:
        raise DataValidationError(f"rus_sim: n_modalities must be >= 2, got {n_modalities}")
    if min(k_redundant, k_unique) < 2 or code_dim < 1 or nuisance_dim < 0 or n_samples < 2:
        raise DataValidationError("rus_sim: need k_redundant, k_unique >= 2, code_dim >= 1, nuisance_dim >= 0, "
                                  "n_samples >= 2")
    d_in = 3 * code_dim + nuisance_dim
    if dim < d_in and transform == "linear":
        raise DataValidationError(f"rus_sim: dim ({dim}) must be >= 3*code_dim + nuisance_dim ({d_in}) for a "
                                  "full-rank linear map")
    if transform not in ("linear", "mlp"):
        raise DataValidationError(f"rus_sim: transform must be 'linear' or 'mlp', got {transform!r}")
    if noise < 0 or not 0 <= bias_q <= 1:
        raise DataValidationError("rus_sim: need noise >= 0 and bias_q in [0, 1]")
    m = n_modalities
    names = [f"x{i + 1}" for i in range(m)]
    valid_targets = ["synergy", "redundant"] + [f"unique_{i + 1}" for i in range(m)]
    if target not in valid_targets:
        raise DataValidationError(f"rus_sim: unknown target '{target}'; valid: {', '.join(valid_targets)}")
    world = np.random.default_rng(seed)  # the fixed structure (codebooks, maps)
    e_r = world.standard_normal((k_redundant, code_dim))
    e_u = [world.standard_normal((k_unique, code_dim)) for _ in range(m)]
    v = [world.standard_normal(code_dim) for _ in range(m)]
    maps = [_fixed_map(world, d_in, dim, transform) for _ in range(m)]
    rng = np.random.default_rng([seed, 1, int(biased)])
    n = n_samples
    r = rng.integers(0, k_redundant, n)
    u = [rng.integers(0, k_unique, n) for _ in range(m)]
    s = [rng.integers(0, 2, n) for _ in range(m)]
    if biased:
        copy = rng.random(n) < bias_q
        for i in range(1, m):
            s[i] = np.where(copy, s[0], s[i])
    nuis = [rng.standard_normal((n, nuisance_dim)) for _ in range(m)]
    x = {}
    for i in range(m):
        z = np.concatenate([e_r[r], e_u[i][u[i]], (2 * s[i] - 1)[:, None] * v[i][None, :], nuis[i]], axis=1)
        x[names[i]] = (maps[i](z) + noise * rng.standard_normal((n, dim))).astype(np.float32)
    syn = (np.sum(s, axis=0) % 2).astype(np.int64)
    latents = {"redundant": r, "synergy": syn}
    sizes = {"redundant": k_redundant, "synergy": 2}
    for i in range(m):
        latents[f"unique_{i + 1}"] = u[i]
        latents[f"carrier_{i + 1}"] = s[i]
        latents[f"nuisance_{i + 1}"] = nuis[i].astype(np.float32)
        sizes.update({f"unique_{i + 1}": k_unique, f"carrier_{i + 1}": 2, f"nuisance_{i + 1}": 0})
    spec = DatasetSpec(
        name="rus_sim",
        modalities=tuple(ModalitySpec(nm, "vector", (dim,)) for nm in names),
        task="classification",
        n_classes=sizes[target],
        latents=sizes,
        description=f"R/U/S synthetic: {m} modalities, K_R={k_redundant}, K_U={k_unique}, XOR synergy"
                    + (f", biased (q={bias_q})" if biased else ""),
    )
    ds = MultimodalDataset(spec, x, y=latents[target], latents=latents)
    ds.information = rus_information(m, k_redundant, k_unique, biased, bias_q)
    return ds


@register_dataset("rus_sim", description="R/U/S synthetic vectors: redundant code, unique codes, XOR synergy")
def load_rus_sim(n_samples: int = 6000, n_modalities: int = 2, k_redundant: int = 4, k_unique: int = 4,
                 code_dim: int = 8, nuisance_dim: int = 4, dim: int = 32, noise: float = 0.1,
                 transform: str = "linear", biased: bool = False, bias_q: float = 1.0, target: str = "synergy",
                 seed: int = 0) -> MultimodalDataset:
    """R/U/S synthetic vectors with exact information values (spec D.4)."""
    return make_rus(n_samples, n_modalities, k_redundant, k_unique, code_dim, nuisance_dim, dim, noise, transform,
                    biased, bias_q, target, seed)

