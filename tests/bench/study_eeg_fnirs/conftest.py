"""Shared by the EEG + fNIRS study tests: a small simulation (slow tests) and a fake evaluation context whose
latents, hand-made feature groups and R/U/S components are built from known latents (fast tests)."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def sim_dm():
    pytest.importorskip("mne")
    pytest.importorskip("nilearn")
    pytest.importorskip("neurokit2")
    from mmib.data.datamodule import MultimodalDataModule
    from mmib.data.registry import build_dataset

    ds = build_dataset("eeg_fnirs_sim", n_subjects=6, trials_per_subject=20, seed=5)
    return MultimodalDataModule(ds, seed=0, val_fraction=0.2, test_fraction=0.2)


N, SPLITS = 300, {"train": (0, 180), "val": (180, 240), "test": (240, 300)}


def latents_of(rng):
    e = rng.integers(0, 2, N)
    a, g = rng.integers(0, 2, N), rng.integers(0, 2, N)
    return {"e": e, "k": rng.integers(0, 3, N), "A": a, "G": g, "synergy": (a + g) % 2, "tau": rng.normal(size=N),
            "t0": rng.normal(size=N), "efficiency": rng.normal(size=N)}


def _features(lat, rng):
    """Each latent in the groups that carry it by construction: k in the EEG band power only, G in the gamma peak,
    A and e in the fNIRS amplitude, e in the ERP, tau and t0 in the latencies; the other groups are noise."""
    def noise(d):
        return 0.3 * rng.normal(size=(N, d))

    col = {k: v.astype(np.float64)[:, None] for k, v in lat.items()}
    return {"eeg_band_power": 2.0 * np.eye(3)[lat["k"]] + noise(3), "eeg_erp": 2.0 * col["e"] + noise(2),
            "eeg_gamma_peak": np.hstack([2.0 * col["G"], col["efficiency"]]) + noise(2),
            "eeg_gamma_windows": noise(3), "eeg_gain_reference": noise(1),
            "eeg_latency": np.hstack([col["tau"], col["t0"]]) + noise(2),
            "fnirs_amplitude": np.hstack([2.0 * col["A"], 2.0 * col["e"]]) + noise(2), "fnirs_windows": noise(3),
            "fnirs_latency": col["tau"] + noise(1)}


class FakeRUS:
    """An R/U/S model whose components are fixed functions of the latents: R_* carry e, U_eeg carries k, U_fnirs
    carries A *and e* (an off-target leak), S carries the synergy; its embeddings retrieve every row exactly."""

    name = "fake_rus"
    device = torch.device("cpu")

    def __init__(self, lat, rng):
        def noise(d):
            return 0.1 * rng.normal(size=(N, d))

        col = {k: v.astype(np.float64)[:, None] for k, v in lat.items()}
        zero = np.zeros((N, 1))
        comps = {"R_eeg": np.hstack([2.0 * col["e"], zero, zero]), "R_fnirs": np.hstack([2.0 * col["e"], zero, zero]),
                 "U_eeg": 2.0 * np.eye(3)[lat["k"]],
                 "U_fnirs": np.hstack([2.0 * col["A"], 2.0 * col["e"], zero]),
                 "S": np.hstack([zero, zero, 2.0 * col["synergy"]])}
        comps = {k: v + noise(3) for k, v in comps.items()}  # one width, as a model's components
        self.comps = {k: torch.tensor(v, dtype=torch.float32) for k, v in comps.items()}
        emb = torch.tensor(rng.normal(size=(N, 16)), dtype=torch.float32)
        self.emb = emb / emb.norm(dim=1, keepdim=True)

    def eval(self):
        return self

    def components(self, batch, modalities):
        return {k: v[batch["idx"]] for k, v in self.comps.items()}

    def embed(self, batch, modalities, space):
        return {"eeg": self.emb[batch["idx"]], "fnirs": self.emb[batch["idx"]]}

    def score(self, queries, candidates):
        return queries["eeg"] @ candidates.T


@pytest.fixture()
def fake_study():
    """``make(method=...)`` -> (ctx, latents, feature groups); ``method="rus"`` gives a :class:`FakeRUS`."""
    def make(method=None):
        rng = np.random.default_rng(0)
        lat = latents_of(rng)
        feats = _features(lat, rng)
        if method == "rus":
            method = FakeRUS(lat, rng)
        ds = SimpleNamespace(latents={k: torch.as_tensor(v) for k, v in lat.items()},
                             get_batch=lambda ii: {"idx": torch.as_tensor(np.asarray(ii))})
        rus = isinstance(method, FakeRUS)
        ctx = SimpleNamespace(
            _cache={}, dm=SimpleNamespace(dataset=ds, indices={s: np.arange(a, b) for s, (a, b) in SPLITS.items()}),
            spec=SimpleNamespace(name="fake", latents={"k": 3, "A": 2, "G": 2, "e": 2, "synergy": 2}), seed=0,
            modalities=("eeg", "fnirs"), method=method, capable=lambda what: rus and what == "components",
            component_names=lambda: list(method.comps) if rus else [])
        ctx._cache[("eeg_fnirs_features", id(ds), -0.5, -2.0)] = feats
        return ctx, lat, feats

    return make
